package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Subordinate id files read by shadow's newuidmap and newgidmap.
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// Subordinate id range allocation.
const (
	SubIDCount    = 65536
	SubIDMinStart = 100000
	maxSubID      = 1<<32 - 1
)

// ErrBadUser reports a user name that cannot appear in a subordinate id file.
var ErrBadUser = errors.New("image: bad user name")

// maxSubIDFile bounds the size of a subordinate id file that is read.
const maxSubIDFile = 16 << 20

// EnsureSubordinateIDs makes sure each file (SubUIDFile and SubGIDFile when
// none is given) has a range for the user called name, as autopkgtest's unshare backend
// needs. A file that already has a line for the user, by name or by uid, is
// left alone. Otherwise one line "user:start:65536" is appended, where start
// is the end of the highest existing range, and at least 100000, so that
// the new range overlaps none. A missing file is created. Calling it again
// changes nothing.
func EnsureSubordinateIDs(name string, files ...string) error {
	if name == "" || strings.ContainsAny(name, ":\n\r\x00 \t#") {
		return fmt.Errorf("%w: %q", ErrBadUser, name)
	}
	if len(files) == 0 {
		files = []string{SubUIDFile, SubGIDFile}
	}
	names := []string{name}
	if u, err := user.Lookup(name); err == nil && u.Uid != name {
		names = append(names, u.Uid)
	}
	for _, f := range files {
		if err := ensureSubIDFile(f, names); err != nil {
			return err
		}
	}
	return nil
}

func ensureSubIDFile(path string, names []string) error {
	data, err := readSmallFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image: %w", err)
	}
	present, start, err := planSubIDs(data, names)
	if err != nil {
		return fmt.Errorf("image: %s: %w", path, err)
	}
	if present {
		return nil
	}
	line := fmt.Sprintf("%s:%d:%d\n", names[0], start, SubIDCount)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSubIDFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSubIDFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxSubIDFile)
	}
	return data, nil
}

// planSubIDs reads a subordinate id file. It reports whether one of names
// already has a range and, if not, where a new range should start. Lines
// that are not "name:start:count" are ignored, as newuidmap does.
func planSubIDs(data []byte, names []string) (present bool, start uint64, err error) {
	start = SubIDMinStart
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(fields[1], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, n := range names {
			if fields[0] == n {
				present = true
			}
		}
		if end := first + count; end > start {
			start = end
		}
	}
	if err := sc.Err(); err != nil {
		return false, 0, err
	}
	if !present && start+SubIDCount-1 > maxSubID {
		return false, 0, fmt.Errorf("no room for %d more subordinate ids", SubIDCount)
	}
	return present, start, nil
}
