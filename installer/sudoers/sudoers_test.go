package sudoers

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func agent(t *testing.T) []Rule {
	t.Helper()
	rules, err := Parse(AgentRules())
	if err != nil {
		t.Fatalf("Parse(sparegrid-agent): %v", err)
	}
	return rules
}

func TestEveryRuleIsExplained(t *testing.T) {
	for _, r := range agent(t) {
		if len(strings.Fields(r.Comment)) < 4 {
			t.Errorf("line %d (%s): comment %q, want a sentence saying why it is needed", r.Line, r.Command, r.Comment)
		}
		if r.User != "sparegrid" {
			t.Errorf("line %d: user %q, want sparegrid", r.Line, r.User)
		}
		if !filepath.IsAbs(r.Command) || strings.ContainsAny(r.Command, "*?[") {
			t.Errorf("line %d: command %q, want one absolute path", r.Line, r.Command)
		}
		if r.Args == nil {
			t.Errorf("line %d (%s): any arguments allowed, want an anchored regular expression", r.Line, r.Command)
		}
	}
}

// The commands the virt servers run, as the xenlvm backend spells them.
var needed = []string{
	"/usr/sbin/xl list",
	"/usr/sbin/xl create /run/sparegrid/xenlvm/sparegrid-tb-0123456789abcdef.cfg",
	"/usr/sbin/xl restore /run/sparegrid/xenlvm/sparegrid-tb-0123456789abcdef.cfg /var/lib/sparegrid/images/bookworm-amd64.save",
	"/usr/sbin/xl destroy sparegrid-tb-0123456789abcdef",
	"/usr/sbin/lvcreate --snapshot --name sparegrid-tb-0123456789abcdef --size 4G sparegrid/sparegrid-base-bookworm",
	"/usr/sbin/lvremove -f sparegrid/sparegrid-tb-0123456789abcdef",
	"/usr/sbin/lvs --noheadings -o lv_name sparegrid",
	"/usr/sbin/lvs --noheadings -o origin sparegrid/sparegrid-tb-0123456789abcdef",
	"/usr/sbin/lvs --noheadings --units s --nosuffix -o lv_size sparegrid/sparegrid-base-bookworm",
	"/usr/sbin/dmsetup create sparegrid-tb-0123456789abcdef --table 0 16777216 snapshot /dev/sparegrid/sparegrid-base-bookworm /dev/sparegrid/sparegrid-scratch N 8",
	"/usr/sbin/dmsetup remove sparegrid-tb-0123456789abcdef",
	"/usr/sbin/dmsetup ls",
	"/usr/sbin/dmsetup table sparegrid-tb-0123456789abcdef",
	"/usr/bin/autopkgtest-virt-sparegrid overlay --base /var/lib/sparegrid/images/bookworm",
	cleanupCommand,
}

// cleanupCommand is what the agent's recovery runs through sudo after a
// crash.
const cleanupCommand = "/usr/bin/autopkgtest-virt-sparegrid overlay --cleanup"

// Commands that must stay out of reach: other guests and volumes, other
// device-mapper tables, paths out of our directories, extra arguments.
var hostile = []string{
	"/usr/sbin/xl destroy Domain-0",
	"/usr/sbin/xl destroy 0",
	"/usr/sbin/xl destroy sparegrid-tb-0123456789abcdef -f 0",
	"/usr/sbin/xl destroy -f sparegrid-tb-0123456789abcdef",
	"/usr/sbin/xl create /etc/xen/mail.cfg",
	"/usr/sbin/xl create /run/sparegrid/xenlvm/../../../etc/xen/mail.cfg",
	"/usr/sbin/xl create /run/sparegrid/xenlvm/sparegrid-tb-0123456789abcdef.cfg memory=99999",
	"/usr/sbin/xl restore /run/sparegrid/xenlvm/sparegrid-tb-0123456789abcdef.cfg /home/x/evil.save",
	"/usr/sbin/xl save sparegrid-tb-0123456789abcdef /tmp/x",
	"/usr/sbin/xl console mail",
	"/usr/sbin/xl list mail -l",
	"/usr/sbin/lvremove -f sparegrid/sparegrid-base-bookworm",
	"/usr/sbin/lvremove -f sparegrid/home",
	"/usr/sbin/lvremove -f sparegrid",
	"/usr/sbin/lvremove -f sparegrid/sparegrid-tb-0123456789abcdef sparegrid/home",
	"/usr/sbin/lvcreate --snapshot --name sparegrid-tb-0123456789abcdef --size 4G sparegrid/home",
	"/usr/sbin/lvcreate --snapshot --name home --size 4G sparegrid/sparegrid-base-bookworm",
	"/usr/sbin/lvcreate --snapshot --name sparegrid-tb-0123456789abcdef --size 4G sparegrid/sparegrid-base-bookworm --config x",
	"/usr/sbin/lvs --noheadings -o lv_name sparegrid --config devices{filter=[]}",
	"/usr/sbin/dmsetup create sparegrid-tb-0123456789abcdef --table 0 100 linear /dev/sda 0",
	"/usr/sbin/dmsetup create sparegrid-tb-0123456789abcdef --table 0 16777216 snapshot /dev/sparegrid/sparegrid-scratch /dev/sparegrid/sparegrid-base-bookworm N 8",
	"/usr/sbin/dmsetup create sparegrid-tb-0123456789abcdef --table 0 16777216 snapshot /dev/sparegrid/sparegrid-base-x /dev/sda N 8",
	"/usr/sbin/dmsetup create sparegrid-tb-0123456789abcdef --table 0 16777216 snapshot /dev/sparegrid/sparegrid-base-bookworm /dev/sparegrid/sparegrid-scratch P 8",
	"/usr/sbin/dmsetup remove sparegrid-vg-root",
	"/usr/sbin/dmsetup remove_all",
	"/usr/sbin/dmsetup ls --tree",
	"/usr/bin/autopkgtest-virt-sparegrid xenlvm --vg sparegrid",
	"/usr/bin/autopkgtest-virt-sparegrid xenlvm --cleanup --vg sparegrid",
	"/usr/bin/sh -c id",
}

func TestRulesAllowWhatIsNeeded(t *testing.T) {
	rules := agent(t)
	for _, c := range needed {
		if !Allowed(rules, "sparegrid", strings.Fields(c)) {
			t.Errorf("Allowed(%q) = false, want true", c)
		}
		if Allowed(rules, "nobody", strings.Fields(c)) {
			t.Errorf("Allowed(nobody, %q) = true, want false", c)
		}
	}
}

// TestCleanupRuleIsPinned checks that the cleanup mode has a rule of its
// own that takes no options, so that it stays allowed, and no more, if the
// rule for the whole overlay server is narrowed.
func TestCleanupRuleIsPinned(t *testing.T) {
	argv := strings.Fields(cleanupCommand)
	for _, r := range agent(t) {
		if r.User != "sparegrid" || !r.Allows(argv) {
			continue
		}
		if !r.Allows(append(argv, "--workdir", "/")) {
			return
		}
	}
	t.Errorf("no rule allows exactly %q", cleanupCommand)
}

func TestRulesRefuseEscapes(t *testing.T) {
	rules := agent(t)
	for _, c := range hostile {
		if Allowed(rules, "sparegrid", strings.Fields(c)) {
			t.Errorf("Allowed(%q) = true, want false", c)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, text string }{
		{"wildcard arguments", "# why\nsparegrid ALL=(root) NOPASSWD: /usr/sbin/xl destroy sparegrid-tb-*\n"},
		{"unanchored regexp", "# why\nsparegrid ALL=(root) NOPASSWD: /usr/sbin/xl ^destroy\n"},
		{"continuation", "# why\nsparegrid ALL=(root) NOPASSWD: /usr/sbin/xl \\\n ^list$\n"},
		{"password rule", "# why\nsparegrid ALL=(root) /usr/sbin/xl ^list$\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.text); !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %v, want %v", tt.text, err, ErrSyntax)
			}
		})
	}
}

func TestVisudoAccepts(t *testing.T) {
	visudo, err := exec.LookPath("visudo")
	if err != nil {
		for _, p := range []string{"/usr/sbin/visudo", "/sbin/visudo"} {
			if _, err := exec.LookPath(p); err == nil {
				visudo = p
			}
		}
	}
	if visudo == "" {
		t.Skip("visudo is not installed (apt-get install sudo)")
	}
	out, err := exec.CommandContext(t.Context(), visudo, "-c", "-f", "sparegrid-agent").CombinedOutput()
	if err != nil {
		t.Errorf("visudo -c -f sparegrid-agent: %v: %s", err, out)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(AgentRules())
	f.Add("sparegrid ALL=(root) NOPASSWD: /x ^(a$\n")
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := Parse(text)
		if err != nil {
			return
		}
		for _, r := range rules {
			r.Allows([]string{r.Command, "a"})
		}
	})
}
