package harness

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requireDebTools skips when the Debian tools the repository helpers run
// are missing.
func requireDebTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "dpkg-source", "dpkg-scanpackages", "dpkg-scansources"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (dpkg-dev)", tool)
		}
	}
}

// paragraphs parses a deb822 file of simple and multi-line fields.
func paragraphs(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	var out []map[string]string
	var cur map[string]string
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			cur = nil
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil || last == "" {
				t.Fatalf("continuation line %q outside a field", line)
			}
			cur[last] += "\n" + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("line %q is not a field", line)
			}
			if cur == nil {
				cur = map[string]string{}
				out = append(out, cur)
			}
			last = k
			cur[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// byField indexes paragraphs by one field's value.
func byField(ps []map[string]string, field string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range ps {
		out[p[field]+" "+p["Version"]] = p
	}
	return out
}

func fileSHA256(t *testing.T, path string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), int64(len(data))
}

// checkRelease checks every SHA256 line of dir/Release against the file
// it names, and that every .gz index holds its plain twin.
func checkRelease(t *testing.T, dir string, wantFiles []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "Release"))
	if err != nil {
		t.Fatal(err)
	}
	ps := paragraphs(t, data)
	if len(ps) != 1 {
		t.Fatalf("Release has %d paragraphs, want 1", len(ps))
	}
	if ps[0]["Date"] == "" {
		t.Errorf("Release has no Date")
	}
	var files []string
	for _, line := range strings.Split(ps[0]["SHA256"], "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("Release SHA256 line %q: want 3 fields", line)
		}
		sum, size := fileSHA256(t, filepath.Join(dir, f[2]))
		if f[0] != sum || f[1] != strconv.FormatInt(size, 10) {
			t.Errorf("Release says %s is %s %s, the file is %s %d", f[2], f[0], f[1], sum, size)
		}
		files = append(files, f[2])
		if plain, ok := strings.CutSuffix(f[2], ".gz"); ok {
			gz, err := os.Open(filepath.Join(dir, f[2]))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(gz)
			if err != nil {
				t.Fatalf("%s: %v", f[2], err)
			}
			got, err := io.ReadAll(zr)
			gz.Close()
			if err != nil {
				t.Fatalf("%s: %v", f[2], err)
			}
			want, err := os.ReadFile(filepath.Join(dir, plain))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s does not decompress to %s", f[2], plain)
			}
		}
	}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("Release lists (-want +got):\n%s", diff)
	}
}

func TestBuildRegression(t *testing.T) {
	requireDebTools(t)
	r := BuildRegression(t)

	t.Run("debs", func(t *testing.T) {
		for _, tt := range []struct {
			version, program string
		}{
			{"1.0", "echo \"" + SgfooWorks + "\""},
			{"2.0", "echo \"" + SgfooBroken + "\"\nexit 1"},
		} {
			t.Run(tt.version, func(t *testing.T) {
				deb := r.Debs[tt.version]
				got := string(runTool(t, "", "dpkg-deb", "--field", deb, "Package", "Version", "Architecture"))
				want := "Package: sgfoo\nVersion: " + tt.version + "\nArchitecture: all\n"
				if got != want {
					t.Errorf("dpkg-deb --field %s = %q, want %q", filepath.Base(deb), got, want)
				}
				contents := string(runTool(t, "", "dpkg-deb", "--contents", deb))
				if !strings.Contains(contents, "-rwxr-xr-x root/root") || !strings.Contains(contents, "./usr/bin/sgfoo") {
					t.Errorf("dpkg-deb --contents %s = %q, want ./usr/bin/sgfoo, 0755, root/root", filepath.Base(deb), contents)
				}
				out := t.TempDir()
				runTool(t, "", "dpkg-deb", "--extract", deb, out)
				program, err := os.ReadFile(filepath.Join(out, "usr", "bin", "sgfoo"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(program), tt.program) {
					t.Errorf("usr/bin/sgfoo of %s = %q, want it to contain %q", tt.version, program, tt.program)
				}
			})
		}
	})

	t.Run("base archive", func(t *testing.T) {
		suite := filepath.Join(r.Base.Root, "dists", "bookworm")
		checkRelease(t, suite, []string{
			"main/binary-amd64/Packages", "main/binary-amd64/Packages.gz",
			"main/source/Sources", "main/source/Sources.gz",
		})
		rel, err := os.ReadFile(filepath.Join(suite, "Release"))
		if err != nil {
			t.Fatal(err)
		}
		fields := paragraphs(t, rel)[0]
		for k, want := range map[string]string{"Suite": "bookworm", "Codename": "bookworm", "Components": "main", "Architectures": "amd64"} {
			if fields[k] != want {
				t.Errorf("Release %s = %q, want %q", k, fields[k], want)
			}
		}

		pkgData, err := os.ReadFile(filepath.Join(suite, "main", "binary-amd64", "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		pkgs := byField(paragraphs(t, pkgData), "Package")
		if len(pkgs) != 1 {
			t.Errorf("Packages has %d stanzas, want 1 (sgfoo 1.0)", len(pkgs))
		}
		p := pkgs["sgfoo 1.0"]
		if p == nil {
			t.Fatalf("Packages lacks sgfoo 1.0:\n%s", pkgData)
		}
		if want := "pool/main/s/sgfoo/sgfoo_1.0_all.deb"; p["Filename"] != want {
			t.Errorf("sgfoo Filename = %q, want %q", p["Filename"], want)
		}
		sum, size := fileSHA256(t, filepath.Join(r.Base.Root, p["Filename"]))
		if p["SHA256"] != sum || p["Size"] != strconv.FormatInt(size, 10) {
			t.Errorf("sgfoo SHA256, Size = %s, %s; the .deb is %s, %d", p["SHA256"], p["Size"], sum, size)
		}

		srcData, err := os.ReadFile(filepath.Join(suite, "main", "source", "Sources"))
		if err != nil {
			t.Fatal(err)
		}
		srcs := byField(paragraphs(t, srcData), "Package")
		for _, tt := range []struct {
			name, version, binary, testsuite, triggers string
		}{
			{"sgfoo", "1.0", "sgfoo", "", ""},
			{"sgfoo-user", "1.0", "sgfoo-user", "autopkgtest", "sgfoo"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := srcs[tt.name+" "+tt.version]
				if s == nil {
					t.Fatalf("Sources lacks %s %s:\n%s", tt.name, tt.version, srcData)
				}
				got := []string{s["Binary"], s["Testsuite"], s["Testsuite-Triggers"], s["Directory"], s["Format"]}
				want := []string{tt.binary, tt.testsuite, tt.triggers, "pool/main/" + tt.name[:1] + "/" + tt.name, "3.0 (native)"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Sources %s: Binary, Testsuite, Testsuite-Triggers, Directory, Format (-want +got):\n%s", tt.name, diff)
				}
				for _, line := range strings.Split(s["Checksums-Sha256"], "\n") {
					f := strings.Fields(line)
					if len(f) != 3 {
						continue
					}
					if sum, _ := fileSHA256(t, filepath.Join(r.Base.Root, s["Directory"], f[2])); sum != f[0] {
						t.Errorf("Sources %s: %s has sha256 %s, the index says %s", tt.name, f[2], sum, f[0])
					}
				}
			})
		}
	})

	t.Run("proposed flat repository", func(t *testing.T) {
		checkRelease(t, r.Proposed, []string{"Packages", "Packages.gz"})
		data, err := os.ReadFile(filepath.Join(r.Proposed, "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		pkgs := byField(paragraphs(t, data), "Package")
		p := pkgs["sgfoo 2.0"]
		if len(pkgs) != 1 || p == nil {
			t.Fatalf("Packages = %v, want only sgfoo 2.0", pkgs)
		}
		if sum, _ := fileSHA256(t, filepath.Join(r.Proposed, p["Filename"])); sum != p["SHA256"] {
			t.Errorf("sgfoo 2.0 at %q has sha256 %s, the index says %s", p["Filename"], sum, p["SHA256"])
		}
	})

	t.Run("apt reads both over HTTP", func(t *testing.T) {
		if _, err := exec.LookPath("apt-get"); err != nil {
			t.Skip("apt-get is not installed")
		}
		aptReads(t, r)
	})
}

// aptReads points a private apt configuration at both repositories,
// served on loopback, and checks what apt makes of them.
func aptReads(t *testing.T, r Regression) {
	dir := t.TempDir()
	base, proposed := ServeDir(t, r.Base.Root), ServeDir(t, r.Proposed)
	list := strings.Join([]string{
		"deb [trusted=yes] " + base + "/ bookworm main",
		"deb-src [trusted=yes] " + base + "/ bookworm main",
		"deb [trusted=yes] " + proposed + "/ ./",
	}, "\n") + "\n"
	for _, d := range []string{"parts", "state/lists/partial", "cache/archives/partial", "prefs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"sources.list": list, "status": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "parts"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(dir, "prefs", "none"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "prefs"),
		"-o", "Dir::State=" + filepath.Join(dir, "state"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures=amd64",
		"-o", "Acquire::Languages=none",
		"-o", "APT::Sandbox::User=" + currentUser(t),
	}
	runTool(t, "", "apt-get", append(opts, "-q", "update")...)

	policy := string(runTool(t, "", "apt-cache", append(opts, "policy", "sgfoo")...))
	if !strings.Contains(policy, "Candidate: 2.0") || !strings.Contains(policy, " 1.0 ") {
		t.Errorf("apt-cache policy sgfoo = %q, want versions 1.0 and 2.0 with 2.0 the candidate", policy)
	}
	showsrc := paragraphs(t, runTool(t, "", "apt-cache", append(opts, "showsrc", "sgfoo-user")...))
	if len(showsrc) != 1 || showsrc[0]["Testsuite-Triggers"] != "sgfoo" || showsrc[0]["Version"] != "1.0" {
		t.Errorf("apt-cache showsrc sgfoo-user = %v, want version 1.0 with Testsuite-Triggers sgfoo", showsrc)
	}
	uris := string(runTool(t, "", "apt-get", append(opts, "source", "--print-uris", "sgfoo-user")...))
	if !strings.Contains(uris, base+"/pool/main/s/sgfoo-user/sgfoo-user_1.0.dsc") {
		t.Errorf("apt-get source --print-uris sgfoo-user = %q, want the .dsc in the base archive's pool", uris)
	}
}

// currentUser names the user apt's downloads may run as: apt drops to
// _apt only when it is root.
func currentUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return "root"
	}
	name := strings.TrimSpace(string(runTool(t, "", "id", "-un")))
	if name == "" {
		t.Fatal("id -un printed nothing")
	}
	return name
}
