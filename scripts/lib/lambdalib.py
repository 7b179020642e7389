"""Running the function binaries where Lambda runs them, for scripts/testing/test-lambda and
benchmarks/scripts/cold-start: under the Lambda Runtime Interface Emulator (the RIE that the SAM
CLI ships), and under `sam local` in containers of a local provided.al2023 image, kept off the
network.
"""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
# SAM 1.170 runs provided.al2023 functions on this image, and with --skip-pull-image builds its
# emulation image on a local image of this name (scripts/sam/base-image makes one).
BASE_IMAGE = "public.ecr.aws/lambda/provided:al2023-x86_64"
INVOCATIONS = "/2015-03-31/functions/function/invocations"


def rie() -> pathlib.Path:
    """The emulator inside the SAM CLI's package (requirements-dev.txt)."""
    import samcli
    path = pathlib.Path(samcli.__file__).parent / "local" / "rapid" / "aws-lambda-rie-x86_64"
    if not path.exists():
        raise SystemExit(f"the Lambda emulator is missing from the SAM CLI ({path}): pip install -r requirements-dev.txt")
    return path


def free_ports(count: int, host: str = "127.0.0.1") -> list:
    """`count` distinct free ports, all held at once while they are picked: one after another,
    the system may hand out the same port twice (then an emulator given both fails to bind)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def wait_for_port(host: str, port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited ({process.returncode}) before it listened")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {host}:{port} within {seconds} s")


def function_env(stand_in: dict, settings: dict, name: str) -> dict:
    """What Lambda gives a function, plus its settings (REGISTRY_TABLE, ...)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_FORMAT": "JSON",
        **stand_in, "AWS_SESSION_TOKEN": "test", **settings,
    }


class Emulated:
    """One function binary under the RIE on a loopback port; `log` collects what both print."""

    def __init__(self, binary: pathlib.Path, env: dict):
        binary = binary.resolve()
        # Both of its addresses on free ports (the Runtime API one defaults to 127.0.0.1:9001),
        # so that emulators can run side by side.
        self.port, runtime_api = free_ports(2)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [str(rie()), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{runtime_api}", str(binary)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=binary.parent)
        try:
            wait_for_port("127.0.0.1", self.port, self.process, f"the emulator of {binary.name}", 10)
        except SystemExit as failed:
            raise SystemExit(f"{failed}:\n{self.output()[-2000:]}") from None

    def invoke(self, event: bytes) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{INVOCATIONS}", data=event, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def init_ms(self) -> float:
        """The emulator's INIT REPORT: exec of the binary to its first poll for an invocation."""
        found = re.findall(r"INIT REPORT\(durationMs: ([0-9.]+)\)", self.output())
        if not found:
            raise SystemExit(f"no INIT REPORT in the emulator's output:\n{self.output()[-2000:]}")
        return float(found[0])

    def invoke_ms(self) -> float:
        """The first invocation's duration, as the emulator reports it (INVOKE RTDONE)."""
        found = re.findall(r"INVOKE RTDONE\(status: \w+, produced bytes: \d+, duration: ([0-9.]+)ms\)", self.output())
        if not found:
            raise SystemExit(f"no INVOKE RTDONE in the emulator's output:\n{self.output()[-2000:]}")
        return float(found[0])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def docker_ok() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def bridge_address() -> str:
    """The host's address on the docker bridge: the only one the containers can reach."""
    inspect = json.loads(subprocess.run(["docker", "network", "inspect", "bridge"], check=True, capture_output=True,
                                        text=True).stdout)[0]
    gateway = next((c["Gateway"] for c in inspect["IPAM"]["Config"] if c.get("Gateway")), None)
    if gateway:
        return gateway
    # The default bridge often leaves the gateway out: it is the bridge interface's address.
    interface = inspect["Options"].get("com.docker.network.bridge.name", "docker0")
    import fcntl
    import struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            # SIOCGIFADDR: the interface's IPv4 address.
            answer = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", interface.encode()[:15]))
        except OSError as e:
            raise SystemExit(f"the docker bridge {interface} has no IPv4 address: {e}")
    return socket.inet_ntoa(answer[20:24])


def ensure_base_image() -> None:
    present = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode == 0
    if not present:
        print(f"== building the local image {BASE_IMAGE} (scripts/sam/base-image)", flush=True)
        subprocess.run([str(ROOT / "scripts" / "sam" / "base-image")], check=True)


def sam_env(stand_in_url: str, home: pathlib.Path, stand_in: dict) -> dict:
    """The SAM CLI kept off the network: no telemetry, no weekly version check (a private
    settings folder whose last check is now), STS (which `sam local` calls at every start) and
    every other endpoint at the stand-in, and no AWS configuration files."""
    app_dir = home / "sam-app"
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "metadata.json").write_text(json.dumps({"lastVersionCheck": time.time(), "telemetryEnabled": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stand_in)
    env.update({
        "SAM_CLI_TELEMETRY": "0", "__SAM_CLI_APP_DIR": str(app_dir),
        "AWS_ENDPOINT_URL": stand_in_url, "AWS_ENDPOINT_URL_STS": stand_in_url,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_DEFAULT_REGION": stand_in["AWS_REGION"],
    })
    return env


def sam_build_dir(binaries: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """What `sam build` makes, from binaries already built: template.yaml as it is, except that
    each function's CodeUri is a folder holding its binary as `bootstrap` (and no build
    metadata). Returns the built template."""
    from samcli.yamlhelper import yaml_dump, yaml_parse
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    template = yaml_parse((ROOT / "template.yaml").read_text())
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        folder = out / logical_id
        folder.mkdir()
        binary = binaries / resource["Metadata"]["BuildProperties"]["Binary"]
        try:
            os.link(binary, folder / "bootstrap")
        except OSError:
            shutil.copy2(binary, folder / "bootstrap")
        resource["Properties"]["CodeUri"] = logical_id
        del resource["Metadata"]
    built = out / "template.yaml"
    built.write_text(yaml_dump(template))
    return built


def logical_ids() -> dict:
    """Binary name -> the logical id of its function in template.yaml."""
    from samcli.yamlhelper import yaml_parse
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return {r["Metadata"]["BuildProperties"]["Binary"]: name for name, r in template["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"}
