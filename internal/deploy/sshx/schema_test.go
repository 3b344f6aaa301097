package sshx

import (
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// TestSchema keeps the described keys and the structs they decode into in step.
func TestSchema(t *testing.T) {
	deploytest.CheckSchema(t, RemoteFields, Remote{})
	deploytest.CheckSchema(t, Access.Config, accessConfig{})
}
