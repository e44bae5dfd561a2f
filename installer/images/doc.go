// Package images holds no code: it owns the tests of the host set-up
// scripts next to it, sparegrid-xen-lvm-setup (the volumes the xenlvm
// backend expects) and sparegrid-xen-image-build (a base volume, its guest
// config template and an optional saved image). The tests run the scripts
// against recording fakes of lvs and lvcreate, and in --dry-run mode,
// because the test machines have no LVM or Xen.
//
// It must not hold anything the agent imports.
package images
