package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes of the certfleet command.
const (
	exitOK       = 0
	exitFailure  = 1 // an error: the server refused, the network failed…
	exitUsage    = 2 // bad flags or arguments
	exitJobError = 3 // `job watch`: the job ended in error
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	// Cobra's own argument and flag errors are usage errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitFailure
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "certfleet",
		Short: "Deploy TLS certificates to every place that serves them",
		Long: `certfleet deploys TLS certificates to the places that serve them.

"certfleet serve" runs a node. Every other command talks to a node through
the Alibaba Cloud SDK (CAS 2020-04-07), so it needs an endpoint and an
AccessKey, taken from, in this order:
  1. flags: --endpoint, --access-key-id, --access-key-secret, --ca-file
  2. environment: CERTFLEET_ENDPOINT, CERTFLEET_ACCESS_KEY_ID,
     CERTFLEET_ACCESS_KEY_SECRET (else ALIBABA_CLOUD_ACCESS_KEY_ID and
     ALIBABA_CLOUD_ACCESS_KEY_SECRET), CERTFLEET_CA_FILE
  3. a profile (--profile, CERTFLEET_PROFILE, default "default") in
     ~/.config/certfleet/config.json or $CERTFLEET_CONFIG, written by
     "certfleet configure".
The endpoint is host:port or http(s)://host:port; without a scheme,
127.0.0.1 and localhost use http and other hosts https. For an https
endpoint whose certificate a private CA signed, give that CA's certificate
with --ca-file. On the server's own machine, eval "$(certfleet env)" sets the
environment from the node's root credentials.

Wherever a command takes the ID of a certificate, resource, contact or
credential, a name works too: a number is an ID, anything else is looked up
by exact name, and a name that several share is refused with their IDs.

Shell completion: "certfleet completion bash|zsh|fish|powershell --help".
Man pages: "certfleet man --dir DIR".

Exit codes:
  0    success
  1    error (the server refused the request, the network failed, …)
  2    usage error (bad flags or arguments)
  3    "job watch": the job ended in error
  130  interrupted (Ctrl-C)`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentBuild().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newServeCmd(), newEnvCmd(), newConfigureCmd(),
		newCertCmd(), newAccessCmd(), newResourceCmd(), newContactCmd(), newJobCmd(), newIssuerCmd(),
		newAccountCmd(), newAuditCmd(), newSSHKeyscanCmd(), newVersionCmd(), newManCmd())
	return root
}

// nounCmd is a command group (cert, job, …) whose subcommands share the
// connection flags.
func nounCmd(use, short string, conn *connFlags) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		}}
	conn.register(cmd.PersistentFlags())
	return cmd
}

// exactArgs wants the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s wants %d argument(s): %s", cmd.CommandPath(), len(names), strings.Join(names, " "))
		}
		return nil
	}
}

// bindEnv lets every flag of fs be set by an environment variable
// CERTFLEET_<FLAG> (dashes become underscores) unless given on the command
// line. Repeatable flags take a comma-separated list.
func bindEnv(fs *pflag.FlagSet) error {
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		name := "CERTFLEET_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok || f.Changed {
			return
		}
		if err := fs.Set(f.Name, v); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", name, err)
		}
	})
	return firstErr
}
