"""Start one sandboxed run: limits, namespaces, an unprivileged user, then the runner.

Run by the trusted grader as ``python -I -S launcher.py CONFIG`` (a fresh, single-threaded
process, so nothing here runs between ``fork`` and ``exec`` of a threaded program). In order:

1. a new session (its own process group: the grader kills the whole group at the end);
2. resource limits: address space, CPU time, file size (the output cap), open files, no core
   dumps, and a process count when the user is unique;
3. when running as root, best effort and each reported: new mount, network and PID
   namespaces (no network; ``/proc`` shows only the sandbox; the instructor's sources, the
   submissions and the repository's history hidden under empty read-only tmpfs mounts; every
   process of the run dies with it);
4. when running as root, drop to a user and group of its own (a uid used by no one else), no
   supplementary groups, ``no_new_privs``;
5. ``exec`` the runner (``course.runner``) with a small, fixed environment.

Only the standard library: this runs before the virtual environment's packages are needed.
"""
import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x40000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 1 << 18
MS_BIND, MNT_DETACH = 0x1000, 2
PR_SET_NO_NEW_PRIVS = 38


def libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]
    return lib


def fail(lib, what):
    return f"{what}: {os.strerror(ctypes.get_errno())}"


def set_limits(config):
    mib = 2**20
    limits = [(resource.RLIMIT_AS, config["memory_mb"] * mib),
              (resource.RLIMIT_CPU, config["cpu_seconds"]),
              (resource.RLIMIT_FSIZE, config["output_mb"] * mib),
              (resource.RLIMIT_NOFILE, 1024),
              (resource.RLIMIT_CORE, 0)]
    if config.get("uid") is not None:
        limits.append((resource.RLIMIT_NPROC, 1024))  # counts this run's user only
    for which, value in limits:
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def expose(lib, ancestor, relatives, stash, notes):
    """Make ``ancestor/rel`` reachable for the run's user when ``ancestor`` is not (``/root``
    is often 0700): an empty tmpfs over ``ancestor`` holding bind mounts of just those paths
    (everything else under it disappears)."""
    os.makedirs(stash, exist_ok=True)
    if lib.mount(ancestor.encode(), stash.encode(), None, MS_BIND | MS_REC, None) != 0:
        notes.append(fail(lib, f"expose {ancestor}"))
        return
    if lib.mount(b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                 b"size=64k,mode=0755") != 0:
        notes.append(fail(lib, f"expose {ancestor}"))
        return
    for rel in relatives:
        target = os.path.join(ancestor, rel)
        os.makedirs(target, exist_ok=True)
        if lib.mount(os.path.join(stash, rel).encode(), target.encode(), None,
                     MS_BIND | MS_REC, None) != 0:
            notes.append(fail(lib, f"expose {target}"))
    lib.umount2(stash.encode(), MNT_DETACH)


def isolate_mounts(lib, config, notes):
    """Private mounts: what the run needs made reachable, a fresh /proc (PID namespace), and
    empty read-only tmpfs over hidden paths."""
    if lib.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        notes.append(fail(lib, "private mounts"))
        return
    for n, (ancestor, relatives) in enumerate(config.get("expose", [])):
        expose(lib, ancestor, relatives, os.path.join(config["stash"], str(n)), notes)
    if config["pid_namespace"]:
        if lib.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
            notes.append(fail(lib, "fresh /proc"))
    for path in config["hide"]:
        if os.path.isdir(path):
            if lib.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                         b"size=4k,mode=0555") != 0:
                notes.append(fail(lib, f"hide {path}"))


def main(config_path):
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    os.setsid()
    set_limits(config)
    lib, notes = libc(), []
    config["pid_namespace"] = False
    if config["namespaces"]:
        for flags, pid in ((CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID, True),
                           (CLONE_NEWNS | CLONE_NEWNET, False)):
            if lib.unshare(flags) == 0:
                config["pid_namespace"] = pid
                break
            notes.append(fail(lib, "namespaces" + (" with PID" if pid else "")))
        else:
            config["namespaces"] = False
    if config["pid_namespace"]:
        child = os.fork()
        if child:  # outside: wait, and report the runner's end as our own
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status)
                     else 128 + os.WTERMSIG(status))
    if config["namespaces"]:
        isolate_mounts(lib, config, notes)
    with open(config["notes"], "w", encoding="utf-8") as f:
        json.dump({"namespaces": config["namespaces"], "pid_namespace": config["pid_namespace"],
                   "problems": notes}, f)
    if config.get("uid") is not None:
        os.setgroups([])
        os.setgid(config["uid"])
        os.setuid(config["uid"])
    lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.chdir(config["cwd"])
    os.umask(0o077)
    os.execve(config["argv"][0], config["argv"], config["env"])


if __name__ == "__main__":
    main(sys.argv[1])
