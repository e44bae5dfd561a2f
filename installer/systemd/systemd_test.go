package systemd

import (
	"strings"
	"testing"
)

func TestUnit(t *testing.T) {
	u := Unit()
	for _, want := range []string{"[Unit]\n", "[Service]\n", "[Install]\n", "\nExecStart=/usr/bin/sparegrid-agent run ", "\nKillMode=process\n", "\nUser=sparegrid\n"} {
		if !strings.Contains(u, want) {
			t.Errorf("Unit() lacks %q", want)
		}
	}
	if strings.Contains(u, "NoNewPrivileges") && !strings.Contains(u, "# NoNewPrivileges") {
		t.Errorf("Unit() sets NoNewPrivileges, which stops sudo")
	}
	if strings.Contains(u, "{{") {
		t.Errorf("Unit() contains template syntax; it must render to itself")
	}
}
