package dep8

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Restrictions that decide where a test can run.
const (
	RestrictionIsolationContainer    = "isolation-container"
	RestrictionIsolationMachine      = "isolation-machine"
	RestrictionNeedsReboot           = "needs-reboot"
	RestrictionNeedsInternet         = "needs-internet"
	RestrictionNeedsRoot             = "needs-root"
	RestrictionNeedsSudo             = "needs-sudo"
	RestrictionBreaksTestbed         = "breaks-testbed"
	RestrictionHintTestsuiteTriggers = "hint-testsuite-triggers"
)

// KnownRestriction reports whether DEP-8 defines restriction r: the
// restrictions autopkgtest 5.28 knows, and hint-testsuite-triggers, which
// marks a test that is never meant to run.
func KnownRestriction(r string) bool {
	switch r {
	case "allow-stderr", RestrictionBreaksTestbed, "build-needed", "flaky",
		RestrictionIsolationContainer, RestrictionIsolationMachine,
		RestrictionNeedsInternet, RestrictionNeedsReboot, "needs-recommends",
		RestrictionNeedsRoot, RestrictionNeedsSudo, "rw-build-tree",
		"skip-not-installable", "skippable", "superficial",
		RestrictionHintTestsuiteTriggers:
		return true
	}
	return false
}

// Requirements is what one test asks of the testbed that runs it.
type Requirements struct {
	// Test is the test's name.
	Test string `json:"test"`
	// Restrictions holds every restriction of the test, sorted; Unknown
	// those of them DEP-8 does not define.
	Restrictions []string `json:"restrictions,omitempty"`
	Unknown      []string `json:"unknown,omitempty"`
	// Architecture is the test's Architecture field; empty means any.
	Architecture []string `json:"architecture,omitempty"`
	// Classes are DEP-8's abstract hardware or platform classes. They are
	// informational: Capable ignores them, and a coordinator that maps a
	// class to machines does so by adding a label to RequestNeeds.
	Classes []string `json:"classes,omitempty"`

	NeedsMachine   bool `json:"needs_machine,omitempty"`   // isolation-machine
	NeedsContainer bool `json:"needs_container,omitempty"` // isolation-container; a machine does too
	NeedsReboot    bool `json:"needs_reboot,omitempty"`    // needs-reboot
	NeedsInternet  bool `json:"needs_internet,omitempty"`  // needs-internet
	NeedsRoot      bool `json:"needs_root,omitempty"`      // needs-root
	NeedsSudo      bool `json:"needs_sudo,omitempty"`      // needs-sudo: root on the testbed and a full revert
	BreaksTestbed  bool `json:"breaks_testbed,omitempty"`  // breaks-testbed: a full revert afterwards

	// Unsupported, when not empty, says why autopkgtest skips the test on
	// every testbed whatever its capabilities: an unknown field or
	// restriction, "all" or mixed negation in Architecture, a "/" in the
	// name, or hint-testsuite-triggers.
	Unsupported string `json:"unsupported,omitempty"`
}

// Has reports whether the test declares restriction r.
func (r Requirements) Has(restriction string) bool {
	_, found := slices.BinarySearch(r.Restrictions, restriction)
	return found
}

// Requirements derives what the test needs from its stanza.
func (t TestStanza) Requirements() Requirements {
	req := Requirements{
		Test:         t.Name,
		Restrictions: slices.Sorted(slices.Values(t.Restrictions)),
		Architecture: slices.Clone(t.Architecture),
		Classes:      slices.Clone(t.Classes),
	}
	req.Restrictions = slices.Compact(req.Restrictions)
	for _, r := range req.Restrictions {
		switch r {
		case RestrictionIsolationMachine:
			req.NeedsMachine = true
		case RestrictionIsolationContainer:
			req.NeedsContainer = true
		case RestrictionNeedsReboot:
			req.NeedsReboot = true
		case RestrictionNeedsInternet:
			req.NeedsInternet = true
		case RestrictionNeedsRoot:
			req.NeedsRoot = true
		case RestrictionNeedsSudo:
			req.NeedsSudo = true
		case RestrictionBreaksTestbed:
			req.BreaksTestbed = true
		}
		if !KnownRestriction(r) {
			req.Unknown = append(req.Unknown, r)
		}
	}
	req.Unsupported = t.unsupported(req)
	return req
}

// unsupported returns why autopkgtest skips the test everywhere, checking
// in autopkgtest's order and using its words.
func (t TestStanza) unsupported(req Requirements) string {
	if len(t.UnknownFields) > 0 {
		return "unknown field " + t.UnknownFields[0]
	}
	if slices.Contains(t.Architecture, "all") {
		return "Arch 'all' not allowed in Architecture field"
	}
	if mixedNegation(t.Architecture) {
		return "It is not permitted for some archs to be prepended by an exclamation mark while others aren't"
	}
	if strings.Contains(t.Name, "/") {
		return "test name may not contain / character"
	}
	if len(req.Unknown) > 0 {
		return "unknown restriction " + req.Unknown[0]
	}
	if req.Has(RestrictionHintTestsuiteTriggers) {
		return "restriction hint-testsuite-triggers: the test only names Testsuite-Triggers and is not run"
	}
	return ""
}

func mixedNegation(archs []string) bool {
	var pos, neg bool
	for _, a := range archs {
		if strings.HasPrefix(a, "!") {
			neg = true
		} else {
			pos = true
		}
	}
	return pos && neg
}

// Applies reports whether the test's Architecture field admits arch, as
// autopkgtest checks it: empty or "any" admits every architecture; "!a"
// excludes what a matches; otherwise the list names what it admits.
// Entries may be dpkg architecture wildcards such as "linux-any" or
// "any-arm". When it does not apply, autopkgtest reports the test as
// skipped with the returned reason.
func (r Requirements) Applies(arch string) (ok bool, reason string) {
	archs := r.Architecture
	if len(archs) == 0 || len(archs) == 1 && archs[0] == "any" {
		return true, ""
	}
	if slices.Contains(archs, "all") {
		return false, "Arch 'all' not allowed in Architecture field"
	}
	for _, a := range archs {
		if neg, ok := strings.CutPrefix(a, "!"); ok && ArchIs(arch, neg) {
			return false, "Test declares architecture as not supported: " + arch
		}
	}
	if mixedNegation(archs) {
		return false, "It is not permitted for some archs to be prepended by an exclamation mark while others aren't"
	}
	if strings.HasPrefix(archs[0], "!") {
		return true, ""
	}
	for _, a := range archs {
		if ArchIs(arch, a) {
			return true, ""
		}
	}
	return false, "Test lists explicitly supported architectures, but the current architecture " + arch + " isn't listed."
}

// Isolation is how far a testbed is separated from its host, in the words
// of autopkgtest's virt-server capabilities.
type Isolation string

// Isolation levels, weakest first.
const (
	IsolationNone      Isolation = "none"
	IsolationContainer Isolation = "container"
	IsolationMachine   Isolation = "machine"
)

func (i Isolation) valid() bool {
	return i == IsolationNone || i == IsolationContainer || i == IsolationMachine
}

// AgentCaps is what the coordinator believes an agent's testbeds can do:
// what its backend advertises, what the agent claims, and over both what
// an admin has set with ApplyAdminLabels.
type AgentCaps struct {
	// ID is the agent's id, used to name it in reasons; 0 when unknown.
	ID      int64
	Arch    string
	Backend string
	// Isolation is IsolationNone, IsolationContainer or IsolationMachine.
	Isolation Isolation
	// Root is the virt-server capability root-on-testbed.
	Root bool
	// RevertFullSystem is revert-full-system: a revert undoes everything
	// a test did to the testbed.
	RevertFullSystem bool
	// Reboot is the virt-server capability reboot.
	Reboot bool
	// Internet is whether a test may reach beyond the package archive.
	Internet bool
	// Labels are free-form names that requests can ask for, sorted.
	Labels []string
	// MemoryMB and DiskMB are what one testbed may use; 0 means unknown.
	MemoryMB int64
	DiskMB   int64
}

// String names the agent the way reasons do: "agent 3 (overlay)".
func (c AgentCaps) String() string {
	name := "agent"
	if c.ID != 0 {
		name += " " + strconv.FormatInt(c.ID, 10)
	}
	if c.Backend != "" {
		name += " (" + c.Backend + ")"
	}
	return name
}

// ErrUnknownBackend reports a backend BackendDefaults has no table for.
var ErrUnknownBackend = errors.New("dep8: unknown testbed backend")

// VirtCapabilities returns the capability words the named backend's virt
// server answers to autopkgtest's "capabilities" command in its default
// configuration, leaving out the per-session downtmp-host and
// suggested-normal-user words: sparegrid's overlay and xenlvm
// (agent/testbed), and autopkgtest's stock servers. Several stock servers
// change their answer with options (lxd --vm adds isolation-machine in
// place of isolation-container; docker and podman --init add
// isolation-container; null, chroot and schroot add root-on-testbed when
// run as, or allowed to become, root; ssh takes whatever its setup script
// says); an agent using such options should be described by admin labels.
func VirtCapabilities(backend string) ([]string, error) {
	const (
		revert = "revert"
		full   = "revert-full-system"
		root   = "root-on-testbed"
		cont   = "isolation-container"
		mach   = "isolation-machine"
		reboot = "reboot"
	)
	switch backend {
	case "overlay":
		return []string{revert, full, cont, root}, nil
	case "xenlvm":
		return []string{revert, full, mach, root}, nil
	case "unshare", "docker", "podman":
		return []string{revert, full, root}, nil
	case "qemu":
		return []string{mach, reboot, revert, full, root}, nil
	case "lxc":
		return []string{cont, revert, full, root, reboot}, nil
	case "lxd", "incus":
		return []string{reboot, revert, full, root, cont}, nil
	case "schroot":
		return []string{revert}, nil
	case "chroot", "ssh":
		return nil, nil
	case "null":
		return []string{mach}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownBackend, backend)
}

// CapsFromVirt describes testbeds whose virt server answers
// "capabilities" with words. Internet is true: autopkgtest runs
// needs-internet tests by default, and an agent without internet access
// says so or is labelled "internet=no" by an admin.
func CapsFromVirt(backend string, words []string) AgentCaps {
	c := AgentCaps{Backend: backend, Isolation: IsolationNone, Internet: true}
	for _, w := range words {
		switch w {
		case "isolation-machine":
			c.Isolation = IsolationMachine
		case "isolation-container":
			if c.Isolation != IsolationMachine {
				c.Isolation = IsolationContainer
			}
		case "root-on-testbed":
			c.Root = true
		case "revert-full-system":
			c.RevertFullSystem = true
		case "reboot":
			c.Reboot = true
		}
	}
	return c
}

// BackendDefaults returns the capabilities an agent on the named backend
// has before any claim or admin label: CapsFromVirt over
// VirtCapabilities.
func BackendDefaults(backend string) (AgentCaps, error) {
	words, err := VirtCapabilities(backend)
	if err != nil {
		return AgentCaps{}, err
	}
	return CapsFromVirt(backend, words), nil
}

// MaxLabelLen bounds a label.
const MaxLabelLen = 64

// ErrBadLabel reports a label that is not well formed.
var ErrBadLabel = errors.New("dep8: bad label")

// ValidLabel reports whether s is a label: lower-case letters, digits,
// ".", "_", ":" and "-", starting with a letter or digit, at most 64
// characters.
func ValidLabel(s string) bool {
	if s == "" || len(s) > MaxLabelLen || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && strings.IndexByte("._:-", c) < 0 {
			return false
		}
	}
	return true
}

// ApplyAdminLabels returns c with the labels an admin set for the agent
// applied over what the backend and the agent claimed. Admin labels win:
//
//	isolation=none|container|machine   sets Isolation
//	reboot=yes|no                      sets Reboot
//	internet=yes|no                    sets Internet
//	root=yes|no                        sets Root
//	revert-full-system=yes|no          sets RevertFullSystem
//	memory-mb=N, disk-mb=N             set MemoryMB, DiskMB
//	-NAME                              removes the claimed label NAME
//	NAME                               adds the label NAME
//
// The result's Labels are sorted and unique. Errors wrap ErrBadLabel.
func ApplyAdminLabels(c AgentCaps, admin []string) (AgentCaps, error) {
	labels := slices.Clone(c.Labels)
	for _, l := range admin {
		if name, ok := strings.CutPrefix(l, "-"); ok {
			if !ValidLabel(name) {
				return AgentCaps{}, fmt.Errorf("%w: %q", ErrBadLabel, l)
			}
			labels = slices.DeleteFunc(labels, func(x string) bool { return x == name })
			continue
		}
		key, value, isKey := strings.Cut(l, "=")
		if !isKey {
			if !ValidLabel(l) {
				return AgentCaps{}, fmt.Errorf("%w: %q", ErrBadLabel, l)
			}
			labels = append(labels, l)
			continue
		}
		if err := c.set(key, value); err != nil {
			return AgentCaps{}, fmt.Errorf("%w: %q: %w", ErrBadLabel, l, err)
		}
	}
	slices.Sort(labels)
	c.Labels = slices.Compact(labels)
	return c, nil
}

func (c *AgentCaps) set(key, value string) error {
	switch key {
	case "isolation":
		if i := Isolation(value); i.valid() {
			c.Isolation = i
			return nil
		}
		return errors.New("want none, container or machine")
	case "reboot":
		return setBool(&c.Reboot, value)
	case "internet":
		return setBool(&c.Internet, value)
	case "root":
		return setBool(&c.Root, value)
	case "revert-full-system":
		return setBool(&c.RevertFullSystem, value)
	case "memory-mb":
		return setMB(&c.MemoryMB, value)
	case "disk-mb":
		return setMB(&c.DiskMB, value)
	}
	return errors.New("unknown capability")
}

func setBool(dst *bool, value string) error {
	switch value {
	case "yes":
		*dst = true
	case "no":
		*dst = false
	default:
		return errors.New("want yes or no")
	}
	return nil
}

func setMB(dst *int64, value string) error {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return errors.New("want a whole number of megabytes")
	}
	*dst = n
	return nil
}

// RequestNeeds is what a request adds to the tests' own requirements.
type RequestNeeds struct {
	// Arch is the job's architecture; empty matches any agent.
	Arch string
	// Labels must all be among the agent's labels.
	Labels []string
	// MemoryMB and DiskMB are minimums; 0 asks for nothing.
	MemoryMB int64
	DiskMB   int64
}

// Capable reports whether agent c can run the test req describes for a
// request that needs extra, and when it cannot, why, naming the first
// unmet need and what the agent lacks:
//
//	test 'reboot' needs needs-reboot; agent 3 (overlay) cannot reboot
//
// A test autopkgtest skips on every testbed (req.Unsupported) or on c's
// architecture (req.Applies) counts as runnable: autopkgtest records the
// skip and its reason, and no other agent of the job's architecture
// would do better. Classes are ignored, as DEP-8 lets consumers do.
func Capable(c AgentCaps, req Requirements, extra RequestNeeds) (ok bool, reason string) {
	m, ok := check(c, req, extra)
	if ok {
		return true, ""
	}
	return false, m.need + "; " + c.String() + " " + m.lack
}

// mismatch is one unmet need: what was needed, and what the agent lacks.
type mismatch struct {
	need, lack string
}

func check(c AgentCaps, req Requirements, extra RequestNeeds) (mismatch, bool) {
	if extra.Arch != "" && c.Arch != extra.Arch {
		return mismatch{"the job is for " + extra.Arch, "is " + orUnknown(c.Arch)}, false
	}
	if req.Unsupported == "" {
		if applies, _ := req.Applies(c.Arch); applies || c.Arch == "" {
			if m, ok := checkTest(c, req); !ok {
				return m, false
			}
		}
	}
	for _, l := range extra.Labels {
		if !slices.Contains(c.Labels, l) {
			return mismatch{fmt.Sprintf("the request needs label %q", l), "does not have it"}, false
		}
	}
	if m, ok := checkSize("memory", extra.MemoryMB, c.MemoryMB); !ok {
		return m, false
	}
	return checkSize("disk", extra.DiskMB, c.DiskMB)
}

// checkTest finds the first restriction of req that c cannot honour, in
// the order autopkgtest lists the capabilities restrictions need.
func checkTest(c AgentCaps, req Requirements) (mismatch, bool) {
	needs := func(restriction, lack string) (mismatch, bool) {
		return mismatch{fmt.Sprintf("test '%s' needs %s", req.Test, restriction), lack}, false
	}
	switch {
	case req.NeedsMachine && c.Isolation != IsolationMachine:
		return needs(RestrictionIsolationMachine, "offers "+isolationWords(c.Isolation))
	case req.NeedsContainer && c.Isolation != IsolationContainer && c.Isolation != IsolationMachine:
		return needs(RestrictionIsolationContainer, "offers "+isolationWords(c.Isolation))
	case req.NeedsReboot && !c.Reboot:
		return needs(RestrictionNeedsReboot, "cannot reboot")
	case req.NeedsRoot && !c.Root:
		return needs(RestrictionNeedsRoot, "has no root on the testbed")
	case req.BreaksTestbed && !c.RevertFullSystem:
		return needs(RestrictionBreaksTestbed, "cannot revert the whole testbed")
	case req.NeedsSudo && !c.Root:
		return needs(RestrictionNeedsSudo, "has no root on the testbed to set sudo up")
	case req.NeedsSudo && !c.RevertFullSystem:
		return needs(RestrictionNeedsSudo, "cannot revert the whole testbed after setting sudo up")
	case req.NeedsInternet && !c.Internet:
		return needs(RestrictionNeedsInternet, "has no internet access")
	}
	return mismatch{}, true
}

func isolationWords(i Isolation) string {
	switch i {
	case IsolationContainer, IsolationMachine:
		return string(i) + " isolation"
	}
	return "no isolation"
}

func checkSize(what string, need, have int64) (mismatch, bool) {
	switch {
	case need <= 0 || have >= need:
		return mismatch{}, true
	case have == 0:
		return mismatch{fmt.Sprintf("the request needs %d MB of %s", need, what), "does not say how much it has"}, false
	}
	return mismatch{fmt.Sprintf("the request needs %d MB of %s", need, what), fmt.Sprintf("has %d MB", have)}, false
}

func orUnknown(s string) string {
	if s == "" {
		return "of unknown architecture"
	}
	return s
}

// Split divides tests between agent c and the rest of the grid, for a
// coordinator that runs c's share with autopkgtest's --test-name (or the
// rest with --skip-test) and sends each other test where it can run.
// runHere lists, in file order and once each, the names of the tests c
// can run, including those autopkgtest skips whatever the testbed (see
// Capable); elsewhere maps each other test's name to the reason c cannot
// run it. Tests that share a name (autopkgtest allows that) go together:
// if c cannot run one of them, the name goes elsewhere.
func Split(tests []TestStanza, c AgentCaps) (runHere []string, elsewhere map[string]string) {
	elsewhere = map[string]string{}
	var names []string
	for _, t := range tests {
		if !slices.Contains(names, t.Name) {
			names = append(names, t.Name)
		}
		if _, already := elsewhere[t.Name]; already {
			continue
		}
		if ok, reason := Capable(c, t.Requirements(), RequestNeeds{}); !ok {
			elsewhere[t.Name] = reason
		}
	}
	for _, n := range names {
		if _, away := elsewhere[n]; !away {
			runHere = append(runHere, n)
		}
	}
	return runHere, elsewhere
}

// maxPendingAgents bounds how many agents a pending reason names.
const maxPendingAgents = 5

// Candidates returns the ids of the agents that can run the test req
// describes for a request that needs extra, in the order given. When
// there are none, pending says why for a PENDING verdict, grouping the
// agents by the need they fail first:
//
//	no capable agent for test 'reboot': test 'reboot' needs needs-reboot (agent 3 (overlay) cannot reboot, agent 4 (unshare) cannot reboot)
func Candidates(req Requirements, agents []AgentCaps, extra RequestNeeds) (ids []int64, pending string) {
	var (
		needs  []string
		lacks  = map[string][]string{}
		named  int
		unseen int
	)
	for _, a := range agents {
		m, ok := check(a, req, extra)
		if ok {
			ids = append(ids, a.ID)
			continue
		}
		if named == maxPendingAgents {
			unseen++
			continue
		}
		named++
		if _, seen := lacks[m.need]; !seen {
			needs = append(needs, m.need)
		}
		lacks[m.need] = append(lacks[m.need], a.String()+" "+m.lack)
	}
	if len(ids) > 0 {
		return ids, ""
	}
	head := fmt.Sprintf("no capable agent for test '%s'", req.Test)
	if named == 0 {
		return nil, head + ": no agent is known"
	}
	parts := make([]string, 0, len(needs))
	for _, n := range needs {
		parts = append(parts, n+" ("+strings.Join(lacks[n], ", ")+")")
	}
	more := ""
	if unseen > 0 {
		more = fmt.Sprintf("; %d more agents cannot either", unseen)
	}
	return nil, head + ": " + strings.Join(parts, "; ") + more
}

// ArchIs reports whether the Debian architecture arch matches alias, an
// architecture or a wildcard such as "any", "linux-any" or "any-arm", as
// dpkg's Dpkg::Arch::debarch_is decides it from dpkg's tuple and CPU
// tables. An architecture dpkg does not know matches only itself and
// "any".
func ArchIs(arch, alias string) bool {
	if alias == arch || alias == "any" {
		return true
	}
	r, ok := archTuple(arch)
	if !ok {
		return false
	}
	a, ok := wildcardTuple(alias)
	if !ok {
		return false
	}
	for i := range a {
		if a[i] != r[i] && a[i] != "any" {
			return false
		}
	}
	return true
}

// wildcardTuple is dpkg's debwildcard_to_debtuple: a wildcard with an
// "any" part is padded with "any" on the left to abi-libc-os-cpu.
func wildcardTuple(alias string) ([4]string, bool) {
	parts := strings.SplitN(alias, "-", 4)
	if !slices.Contains(parts, "any") {
		return archTuple(alias)
	}
	var t [4]string
	if len(parts) == 1 {
		return [4]string{"any", "any", "any", "any"}, true
	}
	for i := range 4 - len(parts) {
		t[i] = "any"
	}
	copy(t[4-len(parts):], parts)
	return t, true
}

// archTuple is dpkg's debarch_to_debtuple over its tupletable and
// cputable (dpkg 1.21): the abi, libc, os and cpu of an architecture.
func archTuple(arch string) ([4]string, bool) {
	if rest, ok := strings.CutPrefix(arch, "linux-"); ok {
		arch, _, _ = strings.Cut(rest, "-")
	}
	tuple := func(s string) ([4]string, bool) {
		p := strings.SplitN(s, "-", 4)
		return [4]string{p[0], p[1], p[2], p[3]}, true
	}
	switch arch {
	case "uclibc-linux-armel":
		return tuple("eabi-uclibc-linux-arm")
	case "musl-linux-armhf":
		return tuple("eabihf-musl-linux-arm")
	case "arm64ilp32":
		return tuple("ilp32-gnu-linux-arm64")
	case "armhf":
		return tuple("eabihf-gnu-linux-arm")
	case "armel":
		return tuple("eabi-gnu-linux-arm")
	case "mipsn32r6el", "mipsn32r6", "mipsn32el", "mipsn32":
		return tuple("abin32-gnu-linux-mips64" + strings.TrimPrefix(arch, "mipsn32"))
	case "mips64r6el", "mips64r6", "mips64el", "mips64":
		return tuple("abi64-gnu-linux-" + arch)
	case "powerpcspe":
		return tuple("spe-gnu-linux-powerpc")
	case "x32":
		return tuple("x32-gnu-linux-amd64")
	case "kfreebsd-armhf":
		return tuple("eabihf-gnu-kfreebsd-arm")
	case "uclinux-armel":
		return tuple("eabi-uclibc-uclinux-arm")
	case "mint-m68k":
		return tuple("base-tos-mint-m68k")
	}
	for _, p := range [...]struct{ arch, tuple string }{
		{"uclibc-linux-", "base-uclibc-linux-"},
		{"musl-linux-", "base-musl-linux-"},
		{"", "base-gnu-linux-"},
		{"kfreebsd-", "base-gnu-kfreebsd-"},
		{"knetbsd-", "base-gnu-knetbsd-"},
		{"kopensolaris-", "base-gnu-kopensolaris-"},
		{"hurd-", "base-gnu-hurd-"},
		{"dragonflybsd-", "base-bsd-dragonflybsd-"},
		{"freebsd-", "base-bsd-freebsd-"},
		{"openbsd-", "base-bsd-openbsd-"},
		{"netbsd-", "base-bsd-netbsd-"},
		{"darwin-", "base-bsd-darwin-"},
		{"aix-", "base-sysv-aix-"},
		{"solaris-", "base-sysv-solaris-"},
		{"uclinux-", "base-uclibc-uclinux-"},
	} {
		if cpu, ok := strings.CutPrefix(arch, p.arch); ok && isCPU(cpu) {
			return tuple(p.tuple + cpu)
		}
	}
	return [4]string{}, false
}

// isCPU reports whether dpkg's cputable names cpu.
func isCPU(cpu string) bool {
	switch cpu {
	case "alpha", "amd64", "arc", "armeb", "arm", "arm64", "avr32", "hppa",
		"loong64", "i386", "ia64", "m32r", "m68k", "mips", "mipsel", "mipsr6",
		"mipsr6el", "mips64", "mips64el", "mips64r6", "mips64r6el", "nios2",
		"or1k", "powerpc", "powerpcel", "ppc64", "ppc64el", "riscv64", "s390",
		"s390x", "sh3", "sh3eb", "sh4", "sh4eb", "sparc", "sparc64", "tilegx":
		return true
	}
	return false
}
