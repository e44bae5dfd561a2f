// Package systemd owns the systemd unit shipped as
// installer/systemd/sparegrid-agent.service and exposes its text, so that
// the agent installs exactly the file that is reviewed and tested here.
//
// It must not install, start or inspect services: agent/service does that.
package systemd

import _ "embed"

//go:embed sparegrid-agent.service
var unit string

// Unit returns the text of installer/systemd/sparegrid-agent.service.
func Unit() string { return unit }
