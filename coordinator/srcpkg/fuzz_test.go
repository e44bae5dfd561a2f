package srcpkg

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
)

var fuzzLimits = Limits{MaxControl: 4 << 10, MaxMembers: 100, MaxDecompressed: 1 << 20, MaxDict: 1 << 20}

func FuzzTestsControl(f *testing.F) {
	tree := tarBytes(f,
		member{name: "hello/debian/control", body: "Source: hello\nTestsuite: autopkgtest\n\nPackage: hello\n"},
		member{name: "hello/debian/tests/control", body: testsTwo})
	f.Add(tree, false)
	debian := member{name: "hello_1.0-1.debian.tar.xz", body: string(xzBytes(f, tarBytes(f, member{name: "debian/tests/control", body: testsSmoke})))}
	orig := member{name: "hello_1.0.orig.tar.gz", body: string(gzipBytes(f, tarBytes(f, member{name: "hello-1.0/README", body: "hi\n"})))}
	f.Add(tarBytes(f, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (quilt)", "Testsuite: autopkgtest\n", orig, debian)}, orig, debian), true)
	native := member{name: "hello_1.0.tar.gz", body: string(gzipBytes(f, tarBytes(f, member{name: "hello-1.0/debian/tests/control", body: testsSmoke})))}
	f.Add(tarBytes(f, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (native)", "", native)}, native), true)
	diff := member{name: "hello_1.0-1.diff.gz", body: string(gzipBytes(f, []byte(
		"--- hello-1.0.orig/debian/tests/control\n+++ hello-1.0/debian/tests/control\n@@ -0,0 +1,2 @@\n+Tests: smoke\n+Depends: @\n")))}
	f.Add(tarBytes(f, member{name: "hello_1.0-1.dsc", body: dscText("1.0", "", orig, diff)}, orig, diff), true)
	f.Fuzz(func(t *testing.T, archive []byte, dsc bool) {
		kind, entry := apiv1.KindTree, "hello/"
		if dsc {
			kind, entry = apiv1.KindDsc, "hello_1.0-1.dsc"
		}
		c, err := TestsControl(bytes.NewReader(archive), kind, entry, fuzzLimits)
		if err != nil {
			if !errors.Is(err, ErrBadArchive) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("TestsControl() error %v wraps none of the package's errors", err)
			}
			return
		}
		if int64(len(c.Data)) > fuzzLimits.MaxControl {
			t.Fatalf("TestsControl() returned %d bytes, over MaxControl %d", len(c.Data), fuzzLimits.MaxControl)
		}
		if (c.Data == nil) != (c.Path == "") {
			t.Fatalf("TestsControl() = Data %q with Path %q, want both or neither", c.Data, c.Path)
		}
		_, _ = c.Tests()
	})
}

func FuzzXZReader(f *testing.F) {
	f.Add(xzBytes(f, []byte(testsTwo)))
	f.Add(xzBytes(f, nil))
	// Whatever this reader decodes within the limits, the module's own
	// reader must decode the same.
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := io.ReadAll(io.LimitReader(newXZReader(bytes.NewReader(data), 1<<20), 1<<20))
		if err != nil || len(got) == 1<<20 {
			return
		}
		zr, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("xz.NewReader refuses what newXZReader decoded: %v", err)
		}
		want, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("newXZReader decoded %d bytes, xz.Reader %d bytes, %v", len(got), len(want), err)
		}
	})
}

func FuzzDiff(f *testing.F) {
	f.Add("--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -1,2 +1,2 @@\n-Tests: a\n+Tests: b\n Depends: @\n\\ No newline at end of file\n", "Tests: a\nDepends: @")
	f.Add("--- /dev/null\n+++ hello/debian/tests/control\n@@ -0,0 +1 @@\n+Tests: a\n", "")
	f.Fuzz(func(t *testing.T, diff, orig string) {
		const max = 4 << 10
		p, err := readDiff(bytes.NewReader([]byte(diff)), max)
		if err != nil || p == nil {
			return
		}
		data, err := p.apply([]byte(orig), max)
		if err == nil && len(data) > max {
			t.Fatalf("apply returned %d bytes, over %d", len(data), max)
		}
	})
}
