"""What the benchmark scripts share: the release server, generated archives, memory readings."""
import gzip
import io
import json
import os
import re
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
# lambdalib (free ports, the Lambda emulator) is shared with the test scripts.
sys.path.insert(0, str(ROOT / "scripts" / "lib"))
from lambdalib import free_port  # noqa: E402

# Release builds; BENCH_PROFILE=debug takes the test build's, for figures that do not depend on
# speed (the units of dynamodb-units).
PROFILE = os.environ.get("BENCH_PROFILE", "release")
SERVER = ROOT / "target" / PROFILE / "registry-server"
# The load generator: the `load` binary of registry-benchmarks (benchmarks/).
LOAD = ROOT / "target" / PROFILE / "load"
MB = 1024 * 1024


def make_archive(path: pathlib.Path, megabytes: int) -> None:
    top = f"bench-connector-{megabytes}.0.0"
    metadata = {"type": "connector", "metadata": {
        "id": "bench-connector", "name": "Bench", "version": f"{megabytes}.0.0", "tenant": "single",
        "type": "source", "category": "batch", "technology": "scala", "runtime": "spark", "licence": "MIT",
        "owner": "bench", "main_class": "Main", "main_program": "bench.jar", "icon": "icon.svg"}}
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("metadata.json", json.dumps(metadata).encode())
        add("ui-config.json", json.dumps({"type": "object", "properties": {"x": {"type": "string"}}}).encode())
        add("icon.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        left = megabytes * MB
        index = 0
        while left > 0:
            chunk = min(left, 8 * MB)
            add(f"libs/lib-{index:04}.jar", os.urandom(chunk))
            left -= chunk
            index += 1


def start(args: list, env: dict = None, server: pathlib.Path = SERVER) -> tuple:
    """A release registry-server (or the `server` binary given) on a free port, with `args`;
    returns (process, base URL). It listens once its stores are ready; if it exits first, its exit
    code and output say why."""
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([str(server), "--listen", f"127.0.0.1:{port}", "--max-upload-bytes", str(2048 * MB),
                                *args], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"registry-server exited ({process.returncode}) at start:\n{log.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(base + "/")
        except urllib.error.HTTPError:
            return process, base
        except OSError:
            time.sleep(0.05)
    raise SystemExit("registry-server did not start")


def status_mb(pid: int, field: str) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")


def post(url: str, body, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)


def register_multipart(base: str, archive: pathlib.Path) -> None:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{archive.name}\"\r\n"
            "Content-Type: application/gzip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + archive.stat().st_size + len(tail)

    def body():
        yield head
        with open(archive, "rb") as f:
            while chunk := f.read(MB):
                yield chunk
        yield tail
    request = urllib.request.Request(base + "/v2/connector/register", data=body(), method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size)})
    with urllib.request.urlopen(request, timeout=600) as response:
        assert json.load(response)["responseCode"] == "OK"


def reset_peak(pid: int) -> None:
    """Starts VmHWM again from the current resident set (Linux: clear_refs 5), so a peak read
    afterwards is the peak of what follows, not of the seeding before it."""
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")


# registry-server hands freed memory back every 5 s (server/src/memory.rs): wait this long for
# memory at rest.
SETTLE_SECONDS = 6


def aws_stand_in() -> tuple:
    """The settings for the S3/DynamoDB stand-in: AWS_ENDPOINT_URL when set, or else a moto server
    started here. Returns (environment, the moto process to stop, or None)."""
    def setting(name: str, default: str) -> str:
        return os.environ.get(name) or default
    moto = None
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        if not shutil.which("moto_server"):
            raise SystemExit("set AWS_ENDPOINT_URL or pip install -r requirements-dev.txt (moto_server)")
        port = free_port()
        moto = subprocess.Popen([str(ROOT / "scripts" / "stand-ins" / "moto-server"), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/")
                break
            except OSError:
                time.sleep(0.1)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": setting("AWS_ACCESS_KEY_ID", "test"),
           "AWS_SECRET_ACCESS_KEY": setting("AWS_SECRET_ACCESS_KEY", "test"),
           "AWS_REGION": setting("AWS_REGION", "us-east-1"), "AWS_EC2_METADATA_DISABLED": "true"}
    return env, moto


# wrk (Debian package `wrk`) against one route.
def list_body(filters: dict, limit: int = None) -> str:
    request = {"filters": filters, **({"limit": limit} if limit else {})}
    return json.dumps({"id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30",
                       "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"}, "request": request})


def list_script(folder: pathlib.Path, name: str, filters: dict, limit: int = None) -> pathlib.Path:
    body = list_body(filters, limit)
    script = folder / f"{name}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(body)}\n')
    return script


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, connections: int, seconds: int, script: pathlib.Path = None) -> tuple:
    command = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        raise SystemExit(f"wrk saw failures:\n{out}")
    return rate, p99


def test_authority(folder: pathlib.Path, host: str = "127.0.0.1") -> dict:
    """A certificate authority made for one run, shaped like the chain AWS's endpoints present:
    an RSA 2048 root, an RSA 2048 intermediate and an RSA 2048 server certificate for `host` (an
    IP address or a name), valid for a day. Writes `ca.pem` (the root, to trust), `chain.pem` (the
    server's certificate and the intermediate, to present) and `key.pem` (the server's key);
    returns their paths by those names."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(common_name: str, key, issuer_name: x509.Name, issuer_key, authority: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(issuer_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        if authority:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                critical=True)
        else:
            try:
                name = x509.IPAddress(ipaddress.ip_address(host))
            except ValueError:
                name = x509.DNSName(host)
            builder = (builder
                       .add_extension(x509.SubjectAlternativeName([name]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                       .add_extension(x509.KeyUsage(
                           digital_signature=True, content_commitment=False, key_encipherment=True,
                           data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                           encipher_only=False, decipher_only=False), critical=True))
        return builder.sign(issuer_key, hashes.SHA256())

    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    root_key, intermediate_key, server_key = new_key(), new_key(), new_key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Benchmark Test Root")])
    root = certificate("Benchmark Test Root", root_key, root_name, root_key, True)
    intermediate = certificate("Benchmark Test Intermediate", intermediate_key, root.subject, root_key, True)
    server = certificate(host, server_key, intermediate.subject, intermediate_key, False)
    pem = serialization.Encoding.PEM
    paths = {name: folder / f"{name}.pem" for name in ("ca", "chain", "key")}
    paths["ca"].write_bytes(root.public_bytes(pem))
    paths["chain"].write_bytes(server.public_bytes(pem) + intermediate.public_bytes(pem))
    paths["key"].write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return paths


def tls_stand_in(upstream: str, folder: pathlib.Path, timings: pathlib.Path = None, replay: bool = False) -> tuple:
    """benchmarks/scripts/tls-stand-in in front of the plain-HTTP stand-in at `upstream` (a URL),
    on a free loopback port, with a test authority made in `folder` (and the stand-in's time per
    request written to `timings`; reads answered from memory once answered with `replay`). Returns
    (its https:// URL, the root certificate to trust, the process to stop)."""
    paths = test_authority(folder)
    port = free_port()
    upstream_address = re.match(r"https?://([^/]+)", upstream).group(1)
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "scripts" / "tls-stand-in"),
                                "--listen", f"127.0.0.1:{port}", "--upstream", upstream_address,
                                "--chain", str(paths["chain"]), "--key", str(paths["key"]),
                                *(["--timings", str(timings)] if timings else []),
                                *(["--replay"] if replay else [])],
                               stdout=subprocess.PIPE, text=True)
    if process.stdout.readline().strip() != "listening":
        process.kill()
        raise SystemExit("tls-stand-in did not start")
    return f"https://127.0.0.1:{port}", paths["ca"], process
