"""Example connector program: lists the objects under a bucket prefix."""
import sys


def main(bucket: str, prefix: str = "") -> None:
    print(f"would read objects from {bucket}/{prefix}")


if __name__ == "__main__":
    main(*sys.argv[1:])
