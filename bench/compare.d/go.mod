module apiserversource-adapter/bench/compare

go 1.22
