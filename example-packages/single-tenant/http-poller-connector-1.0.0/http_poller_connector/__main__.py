"""Example connector program: polls a URL and prints each JSON object it returns."""
import json
import sys
import urllib.request


def main(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        for item in json.load(response):
            print(json.dumps(item))


if __name__ == "__main__":
    main(sys.argv[1])
