package dep8

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func oneTest(t *testing.T, control string) TestStanza {
	t.Helper()
	tests := parseString(t, control)
	if len(tests) != 1 {
		t.Fatalf("ParseTestsControl(%q) gave %d tests, want 1", control, len(tests))
	}
	return tests[0]
}

func TestRequirements(t *testing.T) {
	tests := []struct {
		name    string
		control string
		want    Requirements
	}{
		{
			name:    "no restrictions",
			control: "Tests: smoke\n",
			want:    Requirements{Test: "smoke"},
		},
		{
			name:    "machine and reboot",
			control: "Tests: boot\nRestrictions: needs-root, isolation-machine, needs-reboot, breaks-testbed\nClasses: desktop\nArchitecture: amd64\n",
			want: Requirements{
				Test:         "boot",
				Restrictions: []string{"breaks-testbed", "isolation-machine", "needs-reboot", "needs-root"},
				Architecture: []string{"amd64"},
				Classes:      []string{"desktop"},
				NeedsMachine: true, NeedsReboot: true, NeedsRoot: true, BreaksTestbed: true,
			},
		},
		{
			name:    "container, internet and sudo",
			control: "Tests: web\nRestrictions: isolation-container needs-internet needs-sudo allow-stderr\n",
			want: Requirements{
				Test:           "web",
				Restrictions:   []string{"allow-stderr", "isolation-container", "needs-internet", "needs-sudo"},
				NeedsContainer: true, NeedsInternet: true, NeedsSudo: true,
			},
		},
		{
			name:    "restrictions that do not route",
			control: "Tests: t\nRestrictions: flaky superficial skippable skip-not-installable rw-build-tree build-needed needs-recommends allow-stderr\n",
			want: Requirements{
				Test:         "t",
				Restrictions: []string{"allow-stderr", "build-needed", "flaky", "needs-recommends", "rw-build-tree", "skip-not-installable", "skippable", "superficial"},
			},
		},
		{
			name:    "unknown restrictions are kept and reported",
			control: "Tests: t\nRestrictions: needs-root, needs-gpu, Needs-Root\n",
			want: Requirements{
				Test:         "t",
				Restrictions: []string{"Needs-Root", "needs-gpu", "needs-root"},
				Unknown:      []string{"Needs-Root", "needs-gpu"},
				NeedsRoot:    true,
				Unsupported:  "unknown restriction Needs-Root",
			},
		},
		{
			name:    "hint-testsuite-triggers never runs",
			control: "Tests: hint\nRestrictions: hint-testsuite-triggers\n",
			want: Requirements{
				Test:         "hint",
				Restrictions: []string{"hint-testsuite-triggers"},
				Unsupported:  "restriction hint-testsuite-triggers: the test only names Testsuite-Triggers and is not run",
			},
		},
		{
			name:    "unknown field comes first",
			control: "Tests: t\nRestrictions: weird\nX-Foo: 1\n",
			want: Requirements{
				Test:         "t",
				Restrictions: []string{"weird"},
				Unknown:      []string{"weird"},
				Unsupported:  "unknown field X-foo",
			},
		},
		{
			name:    "all is not an architecture",
			control: "Tests: t\nArchitecture: all\n",
			want:    Requirements{Test: "t", Architecture: []string{"all"}, Unsupported: "Arch 'all' not allowed in Architecture field"},
		},
		{
			name:    "mixed negation",
			control: "Tests: t\nArchitecture: amd64 !i386\n",
			want: Requirements{Test: "t", Architecture: []string{"amd64", "!i386"},
				Unsupported: "It is not permitted for some archs to be prepended by an exclamation mark while others aren't"},
		},
		{
			name:    "slash in the name",
			control: "Test-Command: true\nFeatures: test-name=a/b\n",
			want:    Requirements{Test: "a/b", Unsupported: "test name may not contain / character"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oneTest(t, tt.control).Requirements()
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("Requirements() of %q mismatch (-want +got):\n%s", tt.control, diff)
			}
		})
	}
}

func TestRequirementsHas(t *testing.T) {
	req := oneTest(t, "Tests: t\nRestrictions: needs-root flaky\n").Requirements()
	for _, tt := range []struct {
		r    string
		want bool
	}{{"needs-root", true}, {"flaky", true}, {"breaks-testbed", false}, {"", false}} {
		if got := req.Has(tt.r); got != tt.want {
			t.Errorf("Has(%q) = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestApplies(t *testing.T) {
	tests := []struct {
		name       string
		arch       []string
		on         string
		want       bool
		wantReason string
	}{
		{"no field", nil, "amd64", true, ""},
		{"any", []string{"any"}, "s390x", true, ""},
		{"listed", []string{"amd64", "arm64"}, "arm64", true, ""},
		{"not listed", []string{"amd64", "arm64"}, "armhf", false,
			"Test lists explicitly supported architectures, but the current architecture armhf isn't listed."},
		{"negated", []string{"!s390x", "!i386"}, "i386", false, "Test declares architecture as not supported: i386"},
		{"negated, other arch", []string{"!s390x", "!i386"}, "amd64", true, ""},
		{"wildcard", []string{"linux-any"}, "riscv64", true, ""},
		{"wildcard excludes hurd", []string{"linux-any"}, "hurd-amd64", false,
			"Test lists explicitly supported architectures, but the current architecture hurd-amd64 isn't listed."},
		{"cpu wildcard", []string{"any-arm"}, "armhf", true, ""},
		{"negated wildcard", []string{"!any-arm"}, "armel", false, "Test declares architecture as not supported: armel"},
		{"all", []string{"all"}, "amd64", false, "Arch 'all' not allowed in Architecture field"},
		{"any with another", []string{"any", "amd64"}, "arm64", true, ""},
		{"mixed, negative matches first", []string{"amd64", "!i386"}, "i386", false, "Test declares architecture as not supported: i386"},
		{"mixed", []string{"amd64", "!i386"}, "amd64", false,
			"It is not permitted for some archs to be prepended by an exclamation mark while others aren't"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Requirements{Test: "t", Architecture: tt.arch}.Applies(tt.on)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Applies(%q) with Architecture %q = %v, %q, want %v, %q", tt.on, tt.arch, got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

// The expectations are Dpkg::Arch::debarch_is's answers (dpkg 1.21).
func TestArchIs(t *testing.T) {
	tests := []struct {
		real, alias string
		want        bool
	}{
		{"amd64", "amd64", true},
		{"amd64", "any", true},
		{"foo", "any", true},
		{"foo", "foo", true},
		{"foo", "linux-any", false},
		{"amd64", "linux-any", true},
		{"amd64", "any-amd64", true},
		{"amd64", "linux-amd64", true},
		{"linux-amd64", "amd64", true},
		{"amd64", "any-any", true},
		{"amd64", "any-any-any", true},
		{"amd64", "base-any-any-amd64", true},
		{"amd64", "gnu-any", false},
		{"amd64", "bsd-any", false},
		{"amd64", "hurd-any", false},
		{"hurd-amd64", "hurd-any", true},
		{"hurd-amd64", "any-amd64", true},
		{"hurd-amd64", "linux-any", false},
		{"kfreebsd-amd64", "kfreebsd-any", true},
		{"kfreebsd-armhf", "any-arm", true},
		{"armhf", "any-arm", true},
		{"armel", "any-arm", true},
		{"armhf", "armel", false},
		{"armhf", "eabihf-any-any-arm", true},
		{"armel", "eabihf-any-any-arm", false},
		{"arm64", "any-arm", false},
		{"arm64", "any-arm64", true},
		{"arm64ilp32", "any-arm64", true},
		{"x32", "any-amd64", true},
		{"x32", "any-x32", false},
		{"i386", "any-i386", true},
		{"mips64el", "any-mips64el", true},
		{"mipsn32el", "any-mips64el", true},
		{"mipsel", "any-mips64el", false},
		{"powerpcspe", "any-powerpc", true},
		{"ppc64el", "any-powerpc", false},
		{"musl-linux-arm64", "musl-any-any", true},
		{"musl-linux-arm64", "linux-any", true},
		{"musl-linux-arm64", "gnu-any", false},
		{"uclibc-linux-armel", "any-arm", true},
		{"mint-m68k", "any-m68k", true},
		{"loong64", "linux-any", true},
		{"s390x", "any-foo", false},
		{"amd64", "foo-any", false},
	}
	for _, tt := range tests {
		if got := ArchIs(tt.real, tt.alias); got != tt.want {
			t.Errorf("ArchIs(%q, %q) = %v, want %v", tt.real, tt.alias, got, tt.want)
		}
	}
}

func TestBackendDefaults(t *testing.T) {
	tests := []struct {
		backend string
		want    AgentCaps
	}{
		{"overlay", AgentCaps{Backend: "overlay", Isolation: IsolationContainer, Root: true, RevertFullSystem: true, Internet: true}},
		{"xenlvm", AgentCaps{Backend: "xenlvm", Isolation: IsolationMachine, Root: true, RevertFullSystem: true, Internet: true}},
		{"unshare", AgentCaps{Backend: "unshare", Isolation: IsolationNone, Root: true, RevertFullSystem: true, Internet: true}},
		{"qemu", AgentCaps{Backend: "qemu", Isolation: IsolationMachine, Root: true, RevertFullSystem: true, Reboot: true, Internet: true}},
		{"lxc", AgentCaps{Backend: "lxc", Isolation: IsolationContainer, Root: true, RevertFullSystem: true, Reboot: true, Internet: true}},
		{"lxd", AgentCaps{Backend: "lxd", Isolation: IsolationContainer, Root: true, RevertFullSystem: true, Reboot: true, Internet: true}},
		{"schroot", AgentCaps{Backend: "schroot", Isolation: IsolationNone, Internet: true}},
		{"null", AgentCaps{Backend: "null", Isolation: IsolationMachine, Internet: true}},
		{"docker", AgentCaps{Backend: "docker", Isolation: IsolationNone, Root: true, RevertFullSystem: true, Internet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.backend, func(t *testing.T) {
			got, err := BackendDefaults(tt.backend)
			if err != nil {
				t.Fatalf("BackendDefaults(%q) error = %v", tt.backend, err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("BackendDefaults(%q) mismatch (-want +got):\n%s", tt.backend, diff)
			}
		})
	}
	if _, err := BackendDefaults("vmware"); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("BackendDefaults(%q) error = %v, want %v", "vmware", err, ErrUnknownBackend)
	}
}

func TestCapsFromVirt(t *testing.T) {
	tests := []struct {
		name  string
		words []string
		want  AgentCaps
	}{
		{"nothing", nil, AgentCaps{Backend: "x", Isolation: IsolationNone, Internet: true}},
		{"machine beats container in any order", []string{"isolation-machine", "isolation-container"},
			AgentCaps{Backend: "x", Isolation: IsolationMachine, Internet: true}},
		{"session words are ignored", []string{"revert", "downtmp-host=/tmp/x", "suggested-normal-user=u", "reboot"},
			AgentCaps{Backend: "x", Isolation: IsolationNone, Reboot: true, Internet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CapsFromVirt("x", tt.words)
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("CapsFromVirt(%q) mismatch (-want +got):\n%s", tt.words, diff)
			}
		})
	}
}

func TestApplyAdminLabels(t *testing.T) {
	claimed := AgentCaps{ID: 3, Arch: "amd64", Backend: "overlay", Isolation: IsolationContainer, Root: true,
		RevertFullSystem: true, Internet: true, Labels: []string{"gpu", "fast"}, MemoryMB: 8192}
	tests := []struct {
		name  string
		admin []string
		want  AgentCaps
	}{
		{"none", nil, func() AgentCaps { c := claimed; c.Labels = []string{"fast", "gpu"}; return c }()},
		{"add and remove labels", []string{"big", "-gpu", "-absent", "big"},
			func() AgentCaps { c := claimed; c.Labels = []string{"big", "fast"}; return c }()},
		{"capabilities", []string{"internet=no", "isolation=machine", "reboot=yes", "root=no", "revert-full-system=no", "memory-mb=2048", "disk-mb=100000"},
			AgentCaps{ID: 3, Arch: "amd64", Backend: "overlay", Isolation: IsolationMachine, Reboot: true,
				Labels: []string{"fast", "gpu"}, MemoryMB: 2048, DiskMB: 100000}},
		{"later wins", []string{"internet=no", "internet=yes"},
			func() AgentCaps { c := claimed; c.Labels = []string{"fast", "gpu"}; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyAdminLabels(claimed, tt.admin)
			if err != nil {
				t.Fatalf("ApplyAdminLabels(%q) error = %v", tt.admin, err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("ApplyAdminLabels(%q) mismatch (-want +got):\n%s", tt.admin, diff)
			}
		})
	}
	if !slices.Equal(claimed.Labels, []string{"gpu", "fast"}) {
		t.Errorf("ApplyAdminLabels changed its argument's labels to %q", claimed.Labels)
	}
}

func TestApplyAdminLabelsErrors(t *testing.T) {
	for _, admin := range []string{"", "-", "GPU", "-GPU", "a b", "internet=maybe", "isolation=vm", "memory-mb=-1",
		"memory-mb=lots", "disk-mb=", "colour=blue", "=x", strings.Repeat("a", MaxLabelLen+1)} {
		if got, err := ApplyAdminLabels(AgentCaps{}, []string{admin}); !errors.Is(err, ErrBadLabel) {
			t.Errorf("ApplyAdminLabels(%q) = %+v, %v, want an error wrapping ErrBadLabel", admin, got, err)
		}
	}
}

func TestValidLabel(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"gpu", true},
		{"class:desktop", true},
		{"big-ram_2.0", true},
		{"9", true},
		{strings.Repeat("a", MaxLabelLen), true},
		{"", false},
		{"-gpu", false},
		{"Gpu", false},
		{"a=b", false},
		{"a b", false},
		{strings.Repeat("a", MaxLabelLen+1), false},
	}
	for _, tt := range tests {
		if got := ValidLabel(tt.in); got != tt.want {
			t.Errorf("ValidLabel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func defaults(t *testing.T, id int64, backend, arch string) AgentCaps {
	t.Helper()
	c, err := BackendDefaults(backend)
	if err != nil {
		t.Fatal(err)
	}
	c.ID, c.Arch = id, arch
	return c
}

func TestCapable(t *testing.T) {
	overlay := defaults(t, 3, "overlay", "amd64")
	unshare := defaults(t, 4, "unshare", "amd64")
	qemu := defaults(t, 5, "qemu", "amd64")
	offline, err := ApplyAdminLabels(overlay, []string{"internet=no"})
	if err != nil {
		t.Fatal(err)
	}
	schroot := defaults(t, 6, "schroot", "amd64")
	null := defaults(t, 7, "null", "amd64")
	big := overlay
	big.Labels, big.MemoryMB, big.DiskMB = []string{"gpu"}, 16384, 200000
	tests := []struct {
		name       string
		agent      AgentCaps
		control    string
		need       RequestNeeds
		want       bool
		wantReason string
	}{
		{"plain test anywhere", unshare, "Tests: smoke\n", RequestNeeds{}, true, ""},
		{"reboot on overlay", overlay, "Tests: reboot\nRestrictions: needs-reboot\n", RequestNeeds{}, false,
			"test 'reboot' needs needs-reboot; agent 3 (overlay) cannot reboot"},
		{"reboot on qemu", qemu, "Tests: reboot\nRestrictions: needs-reboot\n", RequestNeeds{}, true, ""},
		{"machine on overlay", overlay, "Tests: k\nRestrictions: isolation-machine\n", RequestNeeds{}, false,
			"test 'k' needs isolation-machine; agent 3 (overlay) offers container isolation"},
		{"container on unshare", unshare, "Tests: svc\nRestrictions: isolation-container\n", RequestNeeds{}, false,
			"test 'svc' needs isolation-container; agent 4 (unshare) offers no isolation"},
		{"container on a machine", qemu, "Tests: svc\nRestrictions: isolation-container\n", RequestNeeds{}, true, ""},
		{"root on schroot", schroot, "Tests: r\nRestrictions: needs-root\n", RequestNeeds{}, false,
			"test 'r' needs needs-root; agent 6 (schroot) has no root on the testbed"},
		{"breaks-testbed on null", null, "Tests: b\nRestrictions: breaks-testbed\n", RequestNeeds{}, false,
			"test 'b' needs breaks-testbed; agent 7 (null) cannot revert the whole testbed"},
		{"breaks-testbed on overlay", overlay, "Tests: b\nRestrictions: breaks-testbed needs-root\n", RequestNeeds{}, true, ""},
		{"sudo without root", schroot, "Tests: s\nRestrictions: needs-sudo\n", RequestNeeds{}, false,
			"test 's' needs needs-sudo; agent 6 (schroot) has no root on the testbed to set sudo up"},
		{"sudo on overlay", overlay, "Tests: s\nRestrictions: needs-sudo\n", RequestNeeds{}, true, ""},
		{"internet when the admin said no", offline, "Tests: net\nRestrictions: needs-internet\n", RequestNeeds{}, false,
			"test 'net' needs needs-internet; agent 3 (overlay) has no internet access"},
		{"first unmet need is named", unshare, "Tests: all\nRestrictions: needs-internet needs-reboot isolation-machine\n", RequestNeeds{}, false,
			"test 'all' needs isolation-machine; agent 4 (unshare) offers no isolation"},
		{"unknown restriction runs anywhere and is skipped there", unshare, "Tests: u\nRestrictions: isolation-machine needs-gpu\n", RequestNeeds{}, true, ""},
		{"hint-testsuite-triggers runs anywhere", unshare, "Tests: h\nRestrictions: hint-testsuite-triggers isolation-machine\n", RequestNeeds{}, true, ""},
		{"test not for this arch is skipped here", overlay, "Tests: a\nArchitecture: s390x\nRestrictions: isolation-machine\n", RequestNeeds{}, true, ""},
		{"test for this arch", overlay, "Tests: a\nArchitecture: amd64\nRestrictions: isolation-machine\n", RequestNeeds{}, false,
			"test 'a' needs isolation-machine; agent 3 (overlay) offers container isolation"},
		{"classes are ignored", unshare, "Tests: c\nClasses: graphics-driver\n", RequestNeeds{}, true, ""},
		{"job arch", overlay, "Tests: a\n", RequestNeeds{Arch: "arm64"}, false, "the job is for arm64; agent 3 (overlay) is amd64"},
		{"job arch matches", overlay, "Tests: a\n", RequestNeeds{Arch: "amd64"}, true, ""},
		{"label missing", overlay, "Tests: a\n", RequestNeeds{Labels: []string{"gpu"}}, false,
			`the request needs label "gpu"; agent 3 (overlay) does not have it`},
		{"label present", big, "Tests: a\n", RequestNeeds{Labels: []string{"gpu"}}, true, ""},
		{"memory unknown", overlay, "Tests: a\n", RequestNeeds{MemoryMB: 4096}, false,
			"the request needs 4096 MB of memory; agent 3 (overlay) does not say how much it has"},
		{"memory short", func() AgentCaps { c := overlay; c.MemoryMB = 2048; return c }(), "Tests: a\n", RequestNeeds{MemoryMB: 4096}, false,
			"the request needs 4096 MB of memory; agent 3 (overlay) has 2048 MB"},
		{"disk short", big, "Tests: a\n", RequestNeeds{DiskMB: 300000}, false,
			"the request needs 300000 MB of disk; agent 3 (overlay) has 200000 MB"},
		{"enough of everything", big, "Tests: a\n", RequestNeeds{Arch: "amd64", Labels: []string{"gpu"}, MemoryMB: 16384, DiskMB: 1}, true, ""},
		{"test needs come before request needs", overlay, "Tests: r\nRestrictions: needs-reboot\n", RequestNeeds{Labels: []string{"gpu"}}, false,
			"test 'r' needs needs-reboot; agent 3 (overlay) cannot reboot"},
		{"agent without id", AgentCaps{Backend: "null", Isolation: IsolationMachine}, "Tests: r\nRestrictions: needs-root\n", RequestNeeds{}, false,
			"test 'r' needs needs-root; agent (null) has no root on the testbed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := oneTest(t, tt.control).Requirements()
			got, reason := Capable(tt.agent, req, tt.need)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Capable(%v, %q, %+v) = %v, %q, want %v, %q", tt.agent, tt.control, tt.need, got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	initsystem := parseFile(t, filepath.Join("testdata", "control", "initsystem"))
	tests := []struct {
		name          string
		tests         []TestStanza
		agent         AgentCaps
		wantHere      []string
		wantElsewhere map[string]string
	}{
		{
			name:  "init system on overlay",
			tests: initsystem,
			agent: defaults(t, 3, "overlay", "amd64"),
			wantHere: []string{"timedated", "hostnamed", "localed-locale", "localed-x11-keymap", "unit-config",
				"build-login"},
			wantElsewhere: map[string]string{
				"logind":            "test 'logind' needs isolation-machine; agent 3 (overlay) offers container isolation",
				"boot-and-services": "test 'boot-and-services' needs isolation-machine; agent 3 (overlay) offers container isolation",
				"upstream":          "test 'upstream' needs isolation-machine; agent 3 (overlay) offers container isolation",
				"boot-smoke":        "test 'boot-smoke' needs needs-reboot; agent 3 (overlay) cannot reboot",
			},
		},
		{
			name:     "init system on unshare",
			tests:    initsystem,
			agent:    defaults(t, 4, "unshare", "amd64"),
			wantHere: []string{"unit-config"},
			wantElsewhere: map[string]string{
				"timedated":          "test 'timedated' needs isolation-container; agent 4 (unshare) offers no isolation",
				"hostnamed":          "test 'hostnamed' needs isolation-container; agent 4 (unshare) offers no isolation",
				"localed-locale":     "test 'localed-locale' needs isolation-container; agent 4 (unshare) offers no isolation",
				"localed-x11-keymap": "test 'localed-x11-keymap' needs isolation-container; agent 4 (unshare) offers no isolation",
				"logind":             "test 'logind' needs isolation-machine; agent 4 (unshare) offers no isolation",
				"boot-and-services":  "test 'boot-and-services' needs isolation-machine; agent 4 (unshare) offers no isolation",
				"upstream":           "test 'upstream' needs isolation-machine; agent 4 (unshare) offers no isolation",
				"build-login":        "test 'build-login' needs isolation-container; agent 4 (unshare) offers no isolation",
				"boot-smoke":         "test 'boot-smoke' needs isolation-container; agent 4 (unshare) offers no isolation",
			},
		},
		{
			name:  "init system on qemu",
			tests: initsystem,
			agent: defaults(t, 5, "qemu", "amd64"),
			wantHere: []string{"timedated", "hostnamed", "localed-locale", "localed-x11-keymap", "logind", "unit-config",
				"boot-and-services", "upstream", "build-login", "boot-smoke"},
		},
		{
			name:  "arch-excluded tests stay, for autopkgtest to skip",
			tests: initsystem,
			agent: defaults(t, 6, "xenlvm", "s390x"),
			wantHere: []string{"timedated", "hostnamed", "localed-locale", "localed-x11-keymap", "unit-config",
				"boot-and-services", "upstream", "build-login"},
			wantElsewhere: map[string]string{
				"logind":     "test 'logind' needs needs-reboot; agent 6 (xenlvm) cannot reboot",
				"boot-smoke": "test 'boot-smoke' needs needs-reboot; agent 6 (xenlvm) cannot reboot",
			},
		},
		{
			name:     "a shared name goes where the harder test can run",
			tests:    parseString(t, "Tests: t\n\nTest-Command: reboot-me\nFeatures: test-name=t\nRestrictions: needs-reboot\n\nTests: u\n"),
			agent:    defaults(t, 3, "overlay", "amd64"),
			wantHere: []string{"u"},
			wantElsewhere: map[string]string{
				"t": "test 't' needs needs-reboot; agent 3 (overlay) cannot reboot",
			},
		},
		{
			name:     "unrunnable tests stay, for autopkgtest to skip",
			tests:    parseString(t, "Tests: odd\nRestrictions: needs-gpu isolation-machine\n\nTests: hint\nRestrictions: hint-testsuite-triggers\n"),
			agent:    defaults(t, 4, "unshare", "amd64"),
			wantHere: []string{"odd", "hint"},
		},
		{
			name:  "no tests",
			agent: defaults(t, 3, "overlay", "amd64"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			here, elsewhere := Split(tt.tests, tt.agent)
			if diff := cmp.Diff(tt.wantHere, here, ignoreEmpty); diff != "" {
				t.Errorf("Split(%v) run here mismatch (-want +got):\n%s", tt.agent, diff)
			}
			if diff := cmp.Diff(tt.wantElsewhere, elsewhere, ignoreEmpty); diff != "" {
				t.Errorf("Split(%v) elsewhere mismatch (-want +got):\n%s", tt.agent, diff)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	overlay := defaults(t, 3, "overlay", "amd64")
	unshare := defaults(t, 4, "unshare", "amd64")
	qemu := defaults(t, 5, "qemu", "amd64")
	qemuArm := defaults(t, 8, "qemu", "arm64")
	reboot := oneTest(t, "Tests: reboot\nRestrictions: needs-reboot\n").Requirements()
	many := make([]AgentCaps, 7)
	for i := range many {
		many[i] = defaults(t, int64(10+i), "overlay", "amd64")
	}
	tests := []struct {
		name        string
		agents      []AgentCaps
		need        RequestNeeds
		wantIDs     []int64
		wantPending string
	}{
		{"one capable", []AgentCaps{overlay, qemu, unshare}, RequestNeeds{}, []int64{5}, ""},
		{"grouped by need", []AgentCaps{overlay, unshare, qemuArm}, RequestNeeds{Arch: "amd64"}, nil,
			"no capable agent for test 'reboot': test 'reboot' needs needs-reboot (agent 3 (overlay) cannot reboot, agent 4 (unshare) cannot reboot); " +
				"the job is for amd64 (agent 8 (qemu) is arm64)"},
		{"no agents", nil, RequestNeeds{}, nil, "no capable agent for test 'reboot': no agent is known"},
		{"long lists are cut", many, RequestNeeds{}, nil,
			"no capable agent for test 'reboot': test 'reboot' needs needs-reboot (agent 10 (overlay) cannot reboot, agent 11 (overlay) cannot reboot, " +
				"agent 12 (overlay) cannot reboot, agent 13 (overlay) cannot reboot, agent 14 (overlay) cannot reboot); 2 more agents cannot either"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, pending := Candidates(reboot, tt.agents, tt.need)
			if !slices.Equal(ids, tt.wantIDs) || pending != tt.wantPending {
				t.Errorf("Candidates(reboot, %v, %+v) = %v, %q, want %v, %q", tt.agents, tt.need, ids, pending, tt.wantIDs, tt.wantPending)
			}
		})
	}
}
