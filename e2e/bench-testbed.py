#!/usr/bin/python3
"""Benchmark sparegrid's overlay testbed against autopkgtest's unshare one.

Both run the same bookworm base: the unshare backend its tarball, the
overlay backend a directory extracted from that same tarball. The script
times the virt-server protocol's open, revert and close commands (driving
each server directly over stdin/stdout, as autopkgtest does) and whole
autopkgtest runs of the e2e fixture, then writes the medians to
docs/benchmarks.md.

Run as root from the repository root: make bench-testbed
Environment: BENCH_TARBALL (a bookworm tarball made by mmdebstrap; built
if unset), BENCH_RUNS (protocol samples, default 7), BENCH_FIXTURE_RUNS
(autopkgtest runs per backend, default 3), BENCH_WORK (scratch directory).
"""

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, 'e2e', 'testdata', 'fixture') + '/'


def log(msg):
    print('bench-testbed: ' + msg, file=sys.stderr, flush=True)


class Server:
    """One virt server spoken to over its protocol."""

    def __init__(self, argv, env):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env=env, text=True, bufsize=1)
        self.expect_ok()

    def expect_ok(self):
        line = self.p.stdout.readline()
        if not line.startswith('ok'):
            raise RuntimeError('virt server said %r' % line)
        return line

    def timed(self, cmd):
        start = time.monotonic()
        self.p.stdin.write(cmd + '\n')
        self.expect_ok()
        return time.monotonic() - start

    def quit(self):
        self.p.stdin.write('quit\n')
        self.p.stdin.close()
        self.p.wait()


def protocol_times(argv, env, runs):
    """Medians of open, revert and close over runs samples each."""
    opens, reverts, closes = [], [], []
    for _ in range(runs):
        s = Server(argv, env)
        opens.append(s.timed('open'))
        reverts.append(s.timed('revert'))
        closes.append(s.timed('close'))
        s.quit()
    return statistics.median(opens), statistics.median(reverts), statistics.median(closes)


def fixture_times(backend_args, env, runs, work):
    times = []
    for i in range(runs):
        out = os.path.join(work, 'out-%d' % i)
        shutil.rmtree(out, ignore_errors=True)
        start = time.monotonic()
        rc = subprocess.call(['autopkgtest', '-U', '-B', '-o', out, FIXTURE, '--'] + backend_args,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - start)
        if rc != 6:
            raise RuntimeError('autopkgtest %s exited %d, want 6 (see %s/log)' % (backend_args[0], rc, out))
    return statistics.median(times)


def ms(s):
    return '%.0f ms' % (s * 1000) if s < 10 else '%.1f s' % s


def main():
    if os.geteuid() != 0:
        sys.exit('bench-testbed: run as root (the overlay backend mounts overlayfs)')
    runs = int(os.environ.get('BENCH_RUNS', '7'))
    fixture_runs = int(os.environ.get('BENCH_FIXTURE_RUNS', '3'))
    work = os.environ.get('BENCH_WORK') or tempfile.mkdtemp(prefix='sparegrid-bench-', dir='/var/tmp')
    os.makedirs(work, exist_ok=True)

    tarball = os.environ.get('BENCH_TARBALL')
    if not tarball:
        tarball = os.path.join(work, 'bookworm.tar')
        if not os.path.exists(tarball):
            log('building the bookworm tarball with mmdebstrap')
            subprocess.check_call(['mmdebstrap', '--mode=unshare', '--variant=apt', '--format=tar',
                                   '--include=ca-certificates', 'bookworm', tarball,
                                   'deb http://deb.debian.org/debian bookworm main',
                                   'deb-src http://deb.debian.org/debian bookworm main'])
    rootfs = os.path.join(work, 'rootfs')
    shutil.rmtree(rootfs, ignore_errors=True)
    os.makedirs(rootfs)
    subprocess.check_call(['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*',
                           '-C', rootfs, '-xf', tarball])

    bindir = os.path.join(work, 'bin')
    log('building autopkgtest-virt-sparegrid')
    subprocess.check_call(['go', 'build', '-o', bindir + '/', './agent/cmd/autopkgtest-virt-sparegrid'], cwd=REPO)
    env = dict(os.environ, PATH=bindir + ':' + os.environ['PATH'])

    overlay = ['sparegrid', 'overlay', '--rootfs', rootfs, '--workdir', os.path.join(work, 'tb')]
    unshare = ['unshare', '--release', 'bookworm', '--tarball', tarball]
    servers = {
        'overlay': [os.path.join(bindir, 'autopkgtest-virt-sparegrid')] + overlay[1:],
        'unshare': ['autopkgtest-virt-unshare'] + unshare[1:],
    }
    results = {}
    for name, argv in servers.items():
        log('timing %s open/revert/close, %d samples' % (name, runs))
        results[name] = list(protocol_times(argv, env, runs))
    for name, args in (('overlay', overlay), ('unshare', unshare)):
        log('timing %d autopkgtest runs of the fixture with %s' % (fixture_runs, name))
        results[name].append(fixture_times(args, env, fixture_runs, work))

    o, u = results['overlay'], results['unshare']
    rows = ['open', 'revert', 'close', 'autopkgtest run of the fixture']
    table = ['| step | overlay | unshare | unshare / overlay |', '|---|---|---|---|']
    for i, row in enumerate(rows):
        table.append('| %s | %s | %s | %.1f× |' % (row, ms(o[i]), ms(u[i]), u[i] / o[i]))
    host = '%s, Linux %s, %d CPUs' % (platform.machine(), platform.release(), os.cpu_count())
    av = subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'autopkgtest'],
                        capture_output=True, text=True).stdout
    doc = DOC.format(table='\n'.join(table), runs=runs, fixture_runs=fixture_runs, host=host,
                     autopkgtest=av, date=time.strftime('%Y-%m-%d'))
    with open(os.path.join(REPO, 'docs', 'benchmarks.md'), 'w') as f:
        f.write(doc)
    print('\n'.join(table))
    shutil.rmtree(rootfs, ignore_errors=True)


DOC = '''# Benchmarks

## Testbeds: overlay against autopkgtest's unshare

sparegrid's `overlay` backend (`autopkgtest-virt-sparegrid overlay`)
against autopkgtest's stock `autopkgtest-virt-unshare`, on the same bookworm
base: unshare gets the `mmdebstrap --format=tar` tarball, overlay a
directory extracted from that same tarball. Medians; the ratio is unshare's
time divided by overlay's.

{table}

Measured {date} on {host}, autopkgtest {autopkgtest}: open, revert and
close are the virt-server protocol commands, timed from sending the command
to the `ok`, over {runs} fresh servers each (one open, one revert, one
close per server). The autopkgtest run is `autopkgtest -U -B -o OUT
e2e/testdata/fixture/ -- BACKEND`, {fixture_runs} runs each, including
`apt-get update` and `dist-upgrade` against deb.debian.org, so it depends on
the network as much as on the backend.

The whole run gains less than open and revert because most of it is
autopkgtest's own work in the testbed (apt-get update and dist-upgrade,
installing each test's dependencies, copying files), which costs the same
in both backends; overlay saves unshare's tarball extraction at open and
about a tenth of the cost of each command autopkgtest runs in the testbed
(overlay's exec prefix is `sh`, `nsenter` and `env`, about 3.5 ms; unshare
sets up a user namespace and its mounts for every command). Tests marked
`breaks-testbed`, and runs of several packages in one testbed, revert
between tests and gain the revert column each time.

What each step costs:

- unshare: open extracts the whole tarball and runs `useradd --root`;
  revert deletes the tree and does the same again; close deletes the tree.
- overlay: open makes an empty upper directory, starts the testbed's init
  in fresh namespaces (overlayfs mount, /proc, /dev, pivot_root) and runs
  `useradd --root`; revert kills that init (the kernel ends every process of
  the testbed and drops its mounts) and opens again, deleting the old upper
  directory in the background; close waits for those deletions.

Reproduce, as root, from the repository root:

```sh
make bench-testbed
# or: BENCH_TARBALL=/path/to/bookworm-amd64.tar BENCH_RUNS=7 BENCH_FIXTURE_RUNS=3 e2e/bench-testbed.py
```
'''

if __name__ == '__main__':
    main()
