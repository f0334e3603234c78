"""OpenSSL's configuration (the system's TLS policy, openssl.cnf) governs the
adapter's TLS connections in every build. The lean libcurl
(scripts/provide-lean-deps) is built without OpenSSL's automatic config load,
so the adapter reads it itself (adapter/tls_config.c) when a connection may
use TLS."""
import os


GUITAR = "kool.karmalabs.local/v1/Guitar"

# Accepts ed25519 signatures alone: the emulator's certificate cannot make one, so
# the handshake fails. (libcurl sets the protocol versions itself, so a MinProtocol
# or MaxProtocol here would not show whether the file was read.)
ED25519_ONLY = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
SignatureAlgorithms = ed25519
"""


def tls_failure(line):
    text = " ".join(str(v) for v in line.values())
    return line.get("level") in ("warn", "error") and ("SSL" in text or "TLS" in text)


def test_openssl_config_applies_to_an_https_api_server(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    conf = os.path.join(workdir, "openssl-ed25519.cnf")
    with open(conf, "w") as f:
        f.write(ED25519_ONLY)
    args = ["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url]
    capped = adapter_factory(args, env={"OPENSSL_CONF": conf}, kubeconfig=emulator.kubeconfig)
    capped.wait_log(tls_failure, 20, "a TLS failure under a configuration accepting ed25519 alone")
    assert not [l for l in capped.logs() if l.get("msg") == "watching"], capped.logs()
    # The configuration was the cause: without it the same adapter watches.
    plain = adapter_factory(args, kubeconfig=emulator.kubeconfig)
    plain.wait_watching()
