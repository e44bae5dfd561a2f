package srcpkg

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// filePatch is what a unified diff does to debian/tests/control.
type filePatch struct {
	name    string // the path in the diff, for messages
	deleted bool
	hunks   []hunk
}

type hunk struct {
	oldStart, oldLines int64
	lines              []hunkLine
}

// hunkLine is one line of a hunk: op is ' ', '-' or '+'; text ends in a
// newline unless the diff marks it "\ No newline at end of file".
type hunkLine struct {
	op   byte
	text string
}

// readDiff reads a unified diff such as a 1.0 source package's .diff.gz
// and returns the patch of the first file named */debian/tests/control,
// or nil when the diff does not touch it. The lines kept are bounded by
// max; other lines may be of any length.
func readDiff(r io.Reader, max int64) (*filePatch, error) {
	lr := lineReader{br: bufio.NewReaderSize(r, 64<<10), max: int(max) + 2}
	var (
		target   *filePatch
		cur      *filePatch // target while its hunks are read
		inFile   bool       // after a "+++" line, while hunks may follow
		minus    string     // the name of a "---" line just read
		oldLeft  int64
		newLeft  int64
		kept     int64
		lineNo   int
		lastLine *hunkLine
	)
	for {
		line, long, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		lineNo++
		if oldLeft > 0 || newLeft > 0 {
			op := line[0]
			if line == "\n" {
				op, line = ' ', " \n"
			}
			switch op {
			case ' ':
				oldLeft--
				newLeft--
			case '-':
				oldLeft--
			case '+':
				newLeft--
			case '\\':
				if lastLine != nil {
					lastLine.text = strings.TrimSuffix(lastLine.text, "\n")
				}
				continue
			default:
				return nil, fmt.Errorf("%w: diff line %d: %q inside a hunk", ErrBadArchive, lineNo, truncate(line))
			}
			if oldLeft < 0 || newLeft < 0 {
				return nil, fmt.Errorf("%w: diff line %d: hunk longer than its header says", ErrBadArchive, lineNo)
			}
			if cur != nil {
				kept += int64(len(line))
				if long || kept > 2*max {
					return nil, fmt.Errorf("%w: the diff of %s is longer than %d bytes", ErrTooLarge, cur.name, 2*max)
				}
				h := &cur.hunks[len(cur.hunks)-1]
				h.lines = append(h.lines, hunkLine{op: op, text: line[1:]})
				lastLine = &h.lines[len(h.lines)-1]
			}
			continue
		}
		switch {
		case line[0] == '\\' && inFile:
			if lastLine != nil {
				lastLine.text = strings.TrimSuffix(lastLine.text, "\n")
				lastLine = nil
			}
		case strings.HasPrefix(line, "--- "):
			minus, inFile, cur, lastLine = diffName(line[4:]), false, nil, nil
		case strings.HasPrefix(line, "+++ ") && minus != "":
			p, err := diffTarget(minus, diffName(line[4:]))
			if err != nil {
				return nil, fmt.Errorf("diff line %d: %w", lineNo, err)
			}
			if p != nil && target != nil {
				return nil, fmt.Errorf("%w: the diff changes %s twice", ErrUnsupported, p.name)
			}
			if p != nil {
				target = p
			}
			minus, inFile, cur = "", true, p
		case strings.HasPrefix(line, "@@ ") && inFile:
			start, oldLines, newLines, ok := parseHunkHeader(line)
			if !ok {
				return nil, fmt.Errorf("%w: diff line %d: bad hunk header %q", ErrBadArchive, lineNo, truncate(line))
			}
			oldLeft, newLeft = oldLines, newLines
			if cur != nil {
				cur.hunks = append(cur.hunks, hunk{oldStart: start, oldLines: oldLines})
			}
		default:
			minus, inFile, cur, lastLine = "", false, nil, nil
		}
	}
	if oldLeft > 0 || newLeft > 0 {
		return nil, fmt.Errorf("%w: the diff ends inside a hunk", ErrBadArchive)
	}
	return target, nil
}

// diffName returns the path of a "---" or "+++" line, without the
// timestamp that follows a tab.
func diffName(s string) string {
	s, _, _ = strings.Cut(s, "\t")
	return strings.TrimRight(s, "\r\n")
}

// diffTarget returns a patch for the file the "---" and "+++" names give
// when it is */debian/tests/control, else nil.
func diffTarget(oldName, newName string) (*filePatch, error) {
	name, deleted := newName, false
	if newName == "/dev/null" {
		name, deleted = oldName, true
	}
	clean, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	if !underTop(clean) {
		return nil, nil
	}
	return &filePatch{name: clean, deleted: deleted}, nil
}

// parseHunkHeader parses "@@ -l[,s] +l[,s] @@".
func parseHunkHeader(line string) (oldStart, oldLines, newLines int64, ok bool) {
	rest, ok := strings.CutPrefix(line, "@@ -")
	if !ok {
		return 0, 0, 0, false
	}
	oldRange, rest, ok := strings.Cut(rest, " +")
	if !ok {
		return 0, 0, 0, false
	}
	newRange, _, ok := strings.Cut(rest, " @@")
	if !ok {
		return 0, 0, 0, false
	}
	oldStart, oldLines, ok1 := parseRange(oldRange)
	_, newLines, ok2 := parseRange(newRange)
	return oldStart, oldLines, newLines, ok1 && ok2
}

func parseRange(s string) (start, lines int64, ok bool) {
	a, b, hasCount := strings.Cut(s, ",")
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start > 1<<40 {
		return 0, 0, false
	}
	lines = 1
	if hasCount {
		lines, err = strconv.ParseInt(b, 10, 64)
		if err != nil || lines < 0 || lines > 1<<40 {
			return 0, 0, false
		}
	}
	return start, lines, true
}

// apply returns orig (nil when the orig tarball has no such file) with
// the patch applied, or nil when the patch deletes the file. Hunks must
// apply exactly where they say, as dpkg-source's patch without fuzz
// would mostly have them.
func (p *filePatch) apply(orig []byte, max int64) ([]byte, error) {
	if p.deleted {
		return nil, nil
	}
	lines := splitLines(string(orig))
	var (
		out  []string
		pos  int
		size int64
	)
	for _, h := range p.hunks {
		start := h.oldStart - 1
		if h.oldLines == 0 {
			start = h.oldStart
		}
		if start < int64(pos) || start > int64(len(lines)) {
			return nil, fmt.Errorf("%w: the hunk of %s at line %d does not apply to the orig tarball's file of %d lines", ErrUnsupported, p.name, h.oldStart, len(lines))
		}
		out = append(out, lines[pos:start]...)
		pos = int(start)
		for _, l := range h.lines {
			if l.op == '+' {
				out = append(out, l.text)
				continue
			}
			if pos >= len(lines) || lines[pos] != l.text {
				return nil, fmt.Errorf("%w: the hunk of %s at line %d does not match line %d of the orig tarball's file", ErrUnsupported, p.name, h.oldStart, pos+1)
			}
			if l.op == ' ' {
				out = append(out, l.text)
			}
			pos++
		}
	}
	out = append(out, lines[pos:]...)
	for _, l := range out {
		size += int64(len(l))
	}
	if size > max {
		return nil, fmt.Errorf("%w: patched %s is %d bytes, more than %d", ErrTooLarge, p.name, size, max)
	}
	return []byte(strings.Join(out, "")), nil
}

// splitLines splits text after each newline.
func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// lineReader reads lines of any length, keeping at most max bytes of
// each.
type lineReader struct {
	br  *bufio.Reader
	max int
	buf []byte
}

// next returns the next line with its newline, and whether it was longer
// than max and cut.
func (lr *lineReader) next() (string, bool, error) {
	lr.buf = lr.buf[:0]
	long := false
	for {
		frag, err := lr.br.ReadSlice('\n')
		if room := lr.max - len(lr.buf); len(frag) > room {
			lr.buf = append(lr.buf, frag[:room]...)
			long = true
		} else {
			lr.buf = append(lr.buf, frag...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(lr.buf) > 0 || long):
			return string(lr.buf), long, nil
		case err != nil:
			return "", false, err
		}
		return string(lr.buf), long, nil
	}
}
