package e2e

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/e2e/harness"
)

type goPackage struct {
	ImportPath   string
	Doc          string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(out)
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

const module = "github.com/sparegrid/sparegrid/"

// TestLayout enforces the boundaries of the design: agent/ never imports
// coordinator/ and the reverse, shared/ imports neither, and e2e/ sees the
// grid only through its binaries.
func TestLayout(t *testing.T) {
	forbidden := map[string][]string{
		"agent/":       {"coordinator/"},
		"coordinator/": {"agent/"},
		"shared/":      {"agent/", "coordinator/", "e2e/"},
		"e2e/":         {"agent/", "coordinator/"},
	}
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module)
		for from, bad := range forbidden {
			if !strings.HasPrefix(rel, from) {
				continue
			}
			for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
				for _, b := range bad {
					if strings.HasPrefix(imp, module+b) {
						t.Errorf("%s imports %s: %s must not import %s", p.ImportPath, imp, from, b)
					}
				}
			}
		}
	}
}

// TestPackageDocs makes every package say what it owns.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment saying what it owns and what it must not do", p.ImportPath)
		}
	}
}
