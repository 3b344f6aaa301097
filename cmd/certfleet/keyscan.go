package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

// errKeyCaught stops the SSH handshake once the host key is in hand: no
// authentication is attempted.
var errKeyCaught = errors.New("host key caught")

func newSSHKeyscanCmd() *cobra.Command {
	var timeout time.Duration
	var out string
	cmd := &cobra.Command{
		Use:   "ssh-keyscan HOST[:PORT]",
		Short: "Print an SSH server's host key to pin in a resource's HostKey, with its fingerprint",
		Long: `Connect to an SSH server (port 22 unless given), take its host key without
logging in, and print it as one authorized_keys-style line — the value of an
ssh resource's HostKey — followed by its SHA256 fingerprint. Compare the
fingerprint with the server's own ("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
on it) before pinning the key:

  certfleet resource update web1 --host-key "$(certfleet ssh-keyscan web1.example.com | head -1)"

This runs on the machine of the command, not the certfleet server: check
the fingerprint if the two see the network differently.`,
		Args: exactArgs("HOST[:PORT]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			addr := args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				addr = net.JoinHostPort(addr, "22")
			}
			key, err := scanHostKey(cmd.Context(), addr, timeout)
			if err != nil {
				return err
			}
			line := string(ssh.MarshalAuthorizedKey(key))
			line = line[:len(line)-1]
			fp := ssh.FingerprintSHA256(key)
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), struct{ HostKey, Fingerprint, Type string }{line, fp, key.Type()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			fmt.Fprintf(cmd.OutOrStdout(), "# %s %s — check it against the server's before pinning\n", fp, key.Type())
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the server")
	outputFlag(cmd, &out, "text")
	return cmd
}

// scanHostKey runs an SSH handshake with addr up to the server's host key.
func scanHostKey(ctx context.Context, addr string, timeout time.Duration) (ssh.PublicKey, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return nil, fmt.Errorf("ssh-keyscan: cannot reach %s: %v", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "certfleet-keyscan",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errKeyCaught
		},
	}
	_, _, _, err = ssh.NewClientConn(nc, addr, cfg)
	if key == nil {
		return nil, fmt.Errorf("ssh-keyscan: %s: no SSH host key: %v", addr, err)
	}
	return key, nil
}
