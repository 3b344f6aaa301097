package sshhaproxy

import (
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// TestSchema keeps the Description and the Config struct in step.
func TestSchema(t *testing.T) {
	deploytest.CheckSchema(t, Description.Config, Config{})
}
