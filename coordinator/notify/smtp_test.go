package notify

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// eximUser is the account Debian's exim4 drops to when run with a
// configuration of its own.
const eximUser = "Debian-exim"

// startExim runs Debian's exim4 on a free loopback port with a test-only
// configuration that accepts every recipient and delivers into one
// maildir. It returns the server's address and the maildir.
func startExim(t *testing.T) (string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the SMTP test runs exim4 as root; not root")
	}
	bin, err := exec.LookPath("exim4")
	if err != nil {
		t.Fatalf("exim4 is not installed (make deps installs exim4-daemon-light): %v", err)
	}
	u, err := user.Lookup(eximUser)
	if err != nil {
		t.Fatalf("user %s: %v", eximUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	dir := t.TempDir()
	// exim drops to its own user for a configuration of its own, and
	// that user must reach the directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"spool", "log", "Maildir"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`keep_environment =
primary_hostname = sparegrid.test
daemon_smtp_ports = %[2]d
local_interfaces = 127.0.0.1
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
pid_file_path = %[1]s/exim.pid
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = acl_rcpt
begin acl
acl_rcpt:
  accept
begin routers
all:
  driver = accept
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = %[1]s/Maildir
  maildir_format
  user = %[3]s
`, dir, port, eximUser)
	confPath := filepath.Join(dir, "exim.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-C", confPath, "-bdf", "-oX", strconv.Itoa(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start exim4: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, "log", "mainlog"))
			t.Logf("exim output:\n%s\nexim mainlog:\n%s", out.String(), logs)
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, "exim4 to listen on "+addr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return addr, filepath.Join(dir, "Maildir")
}

// waitFor polls cond for at most 20 seconds and fails the test with the
// last state cond reported.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

type delivered struct {
	Header mail.Header
	Body   string
}

// readMaildir waits until the maildir holds n messages and returns them
// by subject.
func readMaildir(t *testing.T, dir string, n int) map[string]delivered {
	t.Helper()
	var names []string
	waitFor(t, fmt.Sprintf("%d delivered messages", n), func() (bool, string) {
		entries, err := os.ReadDir(filepath.Join(dir, "new"))
		if err != nil {
			return false, err.Error()
		}
		names = names[:0]
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return len(names) >= n, fmt.Sprintf("%d messages", len(names))
	})
	out := map[string]delivered{}
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, "new", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bufio.NewReader(f))
		if err != nil {
			f.Close()
			t.Fatalf("parse %s: %v", name, err)
		}
		var body io.Reader = m.Body
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		f.Close()
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		out[m.Header.Get("Subject")] = delivered{Header: m.Header, Body: strings.ReplaceAll(string(b), "\r\n", "\n")}
	}
	return out
}

func TestSMTPDelivery(t *testing.T) {
	addr, maildir := startExim(t)
	ctx := t.Context()
	db := sqlite.NewTemp(t)
	if _, err := db.CreateAccount(ctx, store.Account{Name: "dev", Email: "dev@example.org", Role: store.RoleMaintainer}); err != nil {
		t.Fatal(err)
	}
	n := &Notifier{Outbox: db, Recipients: AccountRecipients{Accounts: db}, BaseURL: "https://grid.example.org"}
	v := verdict.Verdict{Package: "hello", Version: "2.10-3", Triggers: []string{"libc6/2.41-1"}, Release: "unstable", Arch: "amd64", Status: verdict.Regression, Reason: "the baseline passed"}
	job := store.Job{ID: 42, Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", SubmittedBy: "dev"}
	res := store.Result{
		Tests:   []dep8.Test{{Name: "upstream", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
		Harness: dep8.Harness{AgentVersion: "1.2.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:abc"},
	}
	queued, err := n.VerdictChanged(ctx, verdict.Pass, v, job, res, sampleLog(), nil)
	if err != nil || !queued {
		t.Fatalf("VerdictChanged = %v, %v; want a queued mail", queued, err)
	}
	for _, k := range []string{"b", "c"} {
		if _, _, err := db.EnqueueMail(ctx, store.Mail{To: "dev@example.org", Subject: "[sparegrid] mail " + k, Body: "about " + k + "\n", Kind: store.MailVerdict, Key: k}); err != nil {
			t.Fatal(err)
		}
	}

	now := time.Now().UTC()
	s := &Sender{Outbox: db, Config: Config{SMTP: addr, From: "grid@example.org", MaxPerHour: 2}, Now: func() time.Time { return now }, Timeout: 10 * time.Second, Logger: quiet()}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sent, err := s.Drain(ctx)
	if err != nil || sent != 2 {
		t.Fatalf("Drain = %d, %v; want 2 sent and the third folded", sent, err)
	}
	msgs := readMaildir(t, maildir, 2)
	want, err := Render(VerdictMessage(Regression, v, job, res, sampleLog(), nil), n.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := msgs["[sparegrid] REGRESSION: hello 2.10-3 on unstable/amd64"]
	if !ok {
		t.Fatalf("delivered subjects = %v, want the regression", slices.Collect(maps.Keys(msgs)))
	}
	for _, h := range []struct{ name, want string }{
		{"From", "<grid@example.org>"},
		{"To", "<dev@example.org>"},
		{"Auto-Submitted", "auto-generated"},
		{"X-Sparegrid-Kind", "verdict"},
	} {
		if g := got.Header.Get(h.name); g != h.want {
			t.Errorf("delivered header %s = %q, want %q", h.name, g, h.want)
		}
	}
	if got.Header.Get("Message-Id") == "" || got.Header.Get("Date") == "" {
		t.Errorf("delivered message lacks Message-Id or Date: %v", got.Header)
	}
	if d := cmp.Diff(strings.TrimRight(want, "\n"), strings.TrimRight(got.Body, "\n")); d != "" {
		t.Errorf("delivered body mismatch (-want +got):\n%s", d)
	}

	now = HourOf(now).Add(time.Hour)
	sent, err = s.Drain(ctx)
	if err != nil || sent != 1 {
		t.Fatalf("Drain at the end of the hour = %d, %v; want the digest sent", sent, err)
	}
	msgs = readMaildir(t, maildir, 3)
	digest, ok := msgs["[sparegrid] 1 held-back mail"]
	if !ok {
		t.Fatalf("delivered subjects = %v, want the digest", slices.Collect(maps.Keys(msgs)))
	}
	if g := digest.Header.Get("X-Sparegrid-Kind"); g != "digest" {
		t.Errorf("digest X-Sparegrid-Kind = %q, want digest", g)
	}
	if _, ok := msgs["[sparegrid] mail b"]; !ok {
		t.Errorf("delivered subjects = %v, want mail b sent directly", slices.Collect(maps.Keys(msgs)))
	}
	if !strings.Contains(digest.Body, "[sparegrid] mail c") || !strings.Contains(digest.Body, "about c") {
		t.Errorf("digest body lacks the held-back mail:\n%s", digest.Body)
	}
	if due, err := db.DueMail(ctx, now.Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("DueMail after the digest = %d mails, %v; want none", len(due), err)
	}
}
