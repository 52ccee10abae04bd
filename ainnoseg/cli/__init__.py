"""The `ainnoseg` command line: one module per group of subcommands."""

import argparse
import sys

from . import inference, overview, training


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ainnoseg",
        description="AinnoSeg workbench: HRNetV2 + dual attention + OCR segmentation.")
    commands = parser.add_subparsers(dest="command", required=True)
    overview.add_parsers(commands)
    training.add_parsers(commands)
    inference.add_parsers(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args) or 0)
