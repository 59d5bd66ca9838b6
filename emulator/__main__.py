"""`python -m emulator`: the local stack's command line (emulator/cli.py), from a checkout."""

from emulator.cli import main

main()
