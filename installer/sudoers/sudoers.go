// Package sudoers owns the sudo rule set shipped as
// installer/sudoers/sparegrid-agent, and a reader for the small subset of
// sudoers syntax that file uses, so that tests can check that the commands
// sparegrid runs through sudo are exactly the ones the rules allow.
//
// It must not grant, install or evaluate privileges at run time: sudo
// itself is the only judge on a real host. Its matcher uses Go's regexp
// (RE2) where sudo uses POSIX extended regular expressions; the rules keep
// to the syntax both read the same way.
package sudoers

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

//go:embed sparegrid-agent
var agentRules string

// AgentRules returns the text of installer/sudoers/sparegrid-agent.
func AgentRules() string { return agentRules }

// ErrSyntax reports a line this reader does not understand.
var ErrSyntax = errors.New("sudoers: unsupported syntax")

// Rule is one "USER HOST=(RUNAS) NOPASSWD: COMMAND ^ARGS$" line.
type Rule struct {
	Line    int
	User    string
	Command string         // absolute path
	Args    *regexp.Regexp // nil: any arguments
	ArgsRaw string
	Comment string // the comment lines right above the rule
}

// Allows reports whether r lets its user run argv (argv[0] is the
// command's path). sudo matches the arguments joined by single spaces.
func (r Rule) Allows(argv []string) bool {
	if len(argv) == 0 || argv[0] != r.Command {
		return false
	}
	if r.Args == nil {
		return true
	}
	return r.Args.MatchString(strings.Join(argv[1:], " "))
}

// Parse reads rules. Defaults lines are skipped; anything else that is
// neither a comment, blank nor a one-command rule is ErrSyntax.
func Parse(text string) ([]Rule, error) {
	var rules []Rule
	var comment []string
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			comment = nil
			continue
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		case strings.HasPrefix(line, "Defaults"):
			comment = nil
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("%w: line %d: continuation lines", ErrSyntax, n)
		}
		who, cmd, ok := strings.Cut(line, "NOPASSWD:")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want NOPASSWD: rules", ErrSyntax, n)
		}
		head := strings.Fields(who)
		cmd = strings.TrimSpace(cmd)
		if len(head) != 2 || strings.Contains(cmd, ",") && !strings.Contains(cmd, "^") {
			return nil, fmt.Errorf("%w: line %d: want one user and one command", ErrSyntax, n)
		}
		path, args, _ := strings.Cut(cmd, " ")
		r := Rule{Line: n, User: head[0], Command: path, ArgsRaw: args, Comment: strings.Join(comment, "\n")}
		if args != "" {
			if !strings.HasPrefix(args, "^") || !strings.HasSuffix(args, "$") {
				return nil, fmt.Errorf("%w: line %d: arguments must be an anchored regular expression", ErrSyntax, n)
			}
			re, err := regexp.Compile(args)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", ErrSyntax, n, err)
			}
			r.Args = re
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// Allowed reports whether any of rules lets user run argv.
func Allowed(rules []Rule, user string, argv []string) bool {
	for _, r := range rules {
		if r.User == user && r.Allows(argv) {
			return true
		}
	}
	return false
}
