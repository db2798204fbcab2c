# What a RUN step may do to the kernel and the host, tried without harm:
# each check prints ok or the errno it failed with, into /facts.txt (and
# stdout). Used by tests/containment.rs under imgbuild and buildah.
import ctypes, errno, os, platform, socket, struct, fcntl
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def err(f):
    try:
        r = f()
        return "ok" if r is None or r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
status = open("/proc/self/status").read().splitlines()
for l in status:
    k, _, v = l.partition(":")
    if k in ("CapEff", "CapBnd", "CapPrm", "CapInh", "CapAmb", "Seccomp", "NoNewPrivs"):
        out[k] = v.strip()
# The kernel setting gets back the value it has: no change even uncontained.
def procsys():
    cur = open("/proc/sys/kernel/core_pattern", "rb").read()
    fd = os.open("/proc/sys/kernel/core_pattern", os.O_WRONLY)
    try:
        os.write(fd, cur)
    finally:
        os.close(fd)
out["procsys"] = err(procsys)
out["sysro"] = "ro" if os.statvfs("/proc/sys").f_flag & os.ST_RDONLY else "rw"
out["sysfs"] = "ro" if os.statvfs("/sys").f_flag & os.ST_RDONLY else "rw"
# Only opened for writing, never written.
def sysrq():
    os.close(os.open("/proc/sysrq-trigger", os.O_WRONLY))
out["sysrq"] = err(sysrq) if os.path.exists("/proc/sysrq-trigger") else "absent"
def blk():
    os.mknod("/tmp/blk", 0o600 | 0o060000, os.makedev(7, 0))
    os.unlink("/tmp/blk")
out["mknod"] = err(blk)
out["mount"] = err(lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None))
nr = {"x86_64": {"init_module": 175, "clone3": 435}, "aarch64": {"init_module": 105, "clone3": 435}}[platform.machine()]
# A null module image: refused before anything is read, even uncontained.
out["init_module"] = err(lambda: libc.syscall(nr["init_module"], None, 0, b""))
out["clone3"] = err(lambda: libc.syscall(nr["clone3"], None, 0))
out["unshare"] = err(lambda: libc.unshare(0x00020000))
if platform.machine() == "x86_64":
    out["x32"] = err(lambda: libc.syscall(0x40000000 + 39))
# Loopback's MTU set to the value it has (needs CAP_NET_ADMIN).
def mtu():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("16si12x", b"lo", 0)
    cur = struct.unpack("16si12x", fcntl.ioctl(s, 0x8921, req))[1]
    fcntl.ioctl(s, 0x8922, struct.pack("16si12x", b"lo", cur))
out["netadmin"] = err(mtu)
def readlen(p):
    if not os.path.exists(p):
        return "absent"
    try:
        with open(p, "rb") as f:
            return str(len(f.read(4096)))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
out["kcore"] = readlen("/proc/kcore")
out["keys"] = readlen("/proc/keys")
out["firmware"] = str(len(os.listdir("/sys/firmware"))) if os.path.isdir("/sys/firmware") else "absent"
out["devices"] = ",".join(sorted(os.listdir("/dev")))
open("/facts.txt", "w").write("".join(f"{k}={v}\n" for k, v in sorted(out.items())))
print(open("/facts.txt").read())
