"""A PEP 517 build backend for the ipckit module, with no dependencies: it builds the library
and the pybind11 module with the project's CMake (for the interpreter running it), then zips
them into a wheel. It lives in the tree (pyproject.toml: backend-path) so that
`pip install ./python` works with no package index, which setuptools or scikit-build-core
would need to be downloaded from under build isolation.

config_settings (pip --config-settings KEY=VALUE): `cmake-args` (extra configure arguments,
split on spaces), `build-dir` (keep the CMake build there, for a faster second build).
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

NAME = "ipckit"
SUMMARY = "Whole messages between processes over any Linux IPC mechanism, named by an address"
PYTHON_DIR = Path(__file__).resolve().parent.parent  # python/
SOURCE_DIR = PYTHON_DIR.parent  # the project root
PACKAGE_FILES = ("__init__.py", "__init__.pyi", "_errors.py", "_numpy.py", "py.typed")


def _version():
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    match = re.search(r"project\(ipckit VERSION ([0-9.]+)", text)
    if not match:
        raise RuntimeError("ipckit build: no project(ipckit VERSION ...) in " + str(SOURCE_DIR / "CMakeLists.txt"))
    return match.group(1)


def _check_source():
    # pip before 21.3 copied ./python alone to a temporary directory: the library is not there.
    if not (SOURCE_DIR / "src").is_dir() or not (SOURCE_DIR / "include" / "ipckit").is_dir():
        raise RuntimeError(
            f"ipckit build: {SOURCE_DIR} is not the ipckit source tree (src/ and include/ are missing); "
            "install from a checkout with a pip that builds in place (pip >= 21.3)"
        )


def _wheel_tag():
    impl = "cp" if sys.implementation.name == "cpython" else sys.implementation.name[:2]
    python = f"{impl}{sys.version_info.major}{sys.version_info.minor}"
    abi = python + ("d" if hasattr(sys, "gettotalrefcount") else "")
    platform = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"{python}-{abi}-{platform}"


def _metadata():
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {_version()}\n"
        f"Summary: {SUMMARY}\n"
        "License: see the project's repository\n"
        "Requires-Python: >=3.8\n"
        "Provides-Extra: numpy\n"
        'Requires-Dist: numpy ; extra == "numpy"\n'
    )


def _dist_info():
    return f"{NAME}-{_version()}.dist-info"


def _write_dist_info(directory, tag):
    dist_info = Path(directory) / _dist_info()
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(_metadata())
    (dist_info / "WHEEL").write_text(
        f"Wheel-Version: 1.0\nGenerator: ipckit_build_backend\nRoot-Is-Purelib: false\nTag: {tag}\n"
    )
    (dist_info / "top_level.txt").write_text(NAME + "\n")
    return dist_info


def _run(command, log):
    print("ipckit build: " + " ".join(command), file=log, flush=True)
    subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)


def _build_module(build_dir, config_settings):
    """Configures and builds the module target; returns the folder holding the package."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("ipckit build: cmake not found on PATH (apt-get install cmake)")
    configure = [
        cmake, "-S", str(SOURCE_DIR), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DIPCKIT_BUILD_TESTS=OFF", "-DIPCKIT_BUILD_TOOLS=OFF", "-DBUILD_SHARED_LIBS=OFF",
        "-DIPCKIT_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}",
    ]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    if shutil.which("ccache"):
        configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    configure += (config_settings or {}).get("cmake-args", "").split()
    log = sys.stderr  # pip shows it with -v, and on failure
    _run(configure, log)
    cache = (Path(build_dir) / "CMakeCache.txt").read_text()
    if "pybind11_DIR:PATH=" not in cache or "pybind11_DIR:PATH=pybind11_DIR-NOTFOUND" in cache:
        raise RuntimeError("ipckit build: pybind11 not found by CMake (apt-get install pybind11-dev)")
    _run([cmake, "--build", str(build_dir), "--target", "ipckit_python", "-j", str(os.cpu_count() or 2)], log)
    package = Path(build_dir) / "python" / NAME
    if not any(package.glob("_ipckit*.so")):
        raise RuntimeError(f"ipckit build: the module was not built in {package} (see the CMake output above)")
    return package


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


# ---- PEP 517 hooks ----


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _check_source()
    return _write_dist_info(metadata_directory, _wheel_tag()).name


def build_sdist(sdist_directory, config_settings=None):
    raise RuntimeError(
        "ipckit build: no source distribution; the module builds from the repository "
        "(python3 -m pip install ./python)"
    )


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _check_source()
    tag = _wheel_tag()
    kept = (config_settings or {}).get("build-dir")
    build_dir = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="ipckit-wheel-"))
    try:
        package = _build_module(build_dir, config_settings)
        wheel_name = f"{NAME}-{_version()}-{tag}.whl"
        with tempfile.TemporaryDirectory() as scratch:
            dist_info = _write_dist_info(scratch, tag)
            files = [(f"{NAME}/{p.name}", p) for p in sorted(package.glob("_ipckit*.so"))]
            files += [(f"{NAME}/{name}", PYTHON_DIR / NAME / name) for name in PACKAGE_FILES]
            files += [(f"{dist_info.name}/{p.name}", p) for p in sorted(dist_info.iterdir())]
            record = []
            with zipfile.ZipFile(Path(wheel_directory) / wheel_name, "w", zipfile.ZIP_DEFLATED) as wheel:
                for archive_name, path in files:
                    data = path.read_bytes()
                    wheel.writestr(archive_name, data)
                    record.append(_record_line(archive_name, data))
                record.append(f"{dist_info.name}/RECORD,,")
                wheel.writestr(f"{dist_info.name}/RECORD", "\n".join(record) + "\n")
        return wheel_name
    finally:
        if not kept:
            shutil.rmtree(build_dir, ignore_errors=True)
