#!/usr/bin/env python3
"""Runs the Kubernetes API emulator: the package kube_emulator/ next to this file (its
__init__.py describes what it emulates; README.md its fault-injection API).  Kept so that every
caller's command line, `python3 tests/emulator/kube_emulator.py [options]`, stays as it was."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from kube_emulator.server import main
    main()
