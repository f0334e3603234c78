"""python3 -m kube_emulator [options] (from tests/emulator): same as kube_emulator.py."""
from kube_emulator.server import main

main()
