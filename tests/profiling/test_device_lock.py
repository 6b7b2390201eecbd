"""One device, many workers: the device script's exclusive lock, against the real loopback sshd."""

from __future__ import annotations

import fcntl
import socket
import threading

import pytest

from profiling._remote import profile_remote
from rtseg_core import RemoteProfilingError

SHAPE = (1, 1, 32, 32)


def _profile(sshd, tiny_onnx, opts, lock_path, **kw):
    return profile_remote(
        tiny_onnx,
        sshd.url,
        opts,
        backend="onnxruntime",
        input_shape=SHAPE,
        warmup=5,
        runs=kw.pop("runs", 2000),
        threads=1,
        lock_path=str(lock_path),
        **kw,
    )


def test_two_concurrent_profiles_do_not_overlap(sshd, tiny_onnx, tmp_path):
    opts = sshd.options(tmp_path)
    lock_path = tmp_path / "device.lock"  # one "device" for both workers, not shared with other test runs
    results, errors = {}, []
    start = threading.Barrier(2)

    def worker(name):
        try:
            start.wait()
            results[name] = _profile(sshd, tiny_onnx, opts, lock_path, lock_timeout_s=120)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    held = sorted(tuple(results[n].environment["device_lock"]["held"]) for n in ("a", "b"))
    (a0, a1), (b0, b1) = held
    assert a0 < a1 and b0 < b1
    assert a1 <= b0, f"the two timing windows overlap: {held}"  # the second started after the first ended
    for n in ("a", "b"):
        lock = results[n].environment["device_lock"]
        assert lock["path"] == str(lock_path) and lock["waited_s"] >= 0


def test_a_held_lock_times_out_naming_the_host(sshd, tiny_onnx, tmp_path):
    opts = sshd.options(tmp_path)
    lock_path = tmp_path / "device.lock"
    with open(lock_path, "w") as holder:
        holder.write("pid 1 (the test holds it)")
        holder.flush()
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RemoteProfilingError, match="is busy") as info:
            _profile(sshd, tiny_onnx, opts, lock_path, runs=5, lock_timeout_s=0.5)
        message = str(info.value)
        assert socket.gethostname() in message and str(lock_path) in message and "the test holds it" in message
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
    rec = _profile(sshd, tiny_onnx, opts, lock_path, runs=5, lock_timeout_s=5)  # free again: it runs
    assert rec.kind == "measured"


def test_the_options_device_lock_is_used_unless_a_call_names_one(sshd, tiny_onnx, tmp_path):
    # sshd.options() names the server's own lock (the suite's xdist workers never queue on the device default)
    opts = sshd.options(tmp_path)
    assert opts.device_lock == sshd.device_lock != "/tmp/rtseg-device-profiler.lock"
    rec = profile_remote(tiny_onnx, sshd.url, opts, backend="onnxruntime", input_shape=SHAPE, warmup=1, runs=2)
    assert rec.environment["device_lock"]["path"] == sshd.device_lock
