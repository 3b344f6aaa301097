package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newAccessCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("access", "Manage credentials that deployments use (SSH keys, webhook secrets)", conn)
	cmd.AddCommand(newAccessAddSSHCmd(conn), newAccessAddWebhookCmd(conn), newAccessListCmd(conn), newAccessDeleteCmd(conn))
	return cmd
}

// createAccess calls CreateCloudAccess and reports the new ID.
func createAccess(cmd *cobra.Command, conn *connFlags, out string, q map[string]string) error {
	if err := checkOutput(out, "text", "json"); err != nil {
		return err
	}
	c, err := conn.dial()
	if err != nil {
		return err
	}
	var r struct{ AccessId int64 }
	if err := c.call("CreateCloudAccess", q, &r); err != nil {
		return err
	}
	if out == "json" {
		return printJSON(cmd.OutOrStdout(), r)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Created access %d (%s).\n", r.AccessId, q["Name"])
	return nil
}

func newAccessAddSSHCmd(conn *connFlags) *cobra.Command {
	var name, user, keyFile, out string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "add-ssh --name NAME --user USER (--key-file FILE | --password-stdin)",
		Short: "Store an SSH login (user and private key or password) for ssh resources",
		Long: `Store an SSH login for ssh resources: the user and either a private key
(--key-file) or a password read from standard input (--password-stdin: the
first line, without its newline; on a terminal it is not echoed):

  printf '%s\n' "$SSH_PASSWORD" | certfleet access add-ssh --name web --user deploy --password-stdin`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			var secret string
			if passwordStdin {
				pw, err := readPassword(cmd)
				if err != nil {
					return err
				}
				if strings.Contains(pw, "-----BEGIN") {
					return usageErrorf("standard input holds a private key; use --key-file")
				}
				secret = pw
			} else {
				key, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("--key-file: %w", err)
				}
				if !strings.Contains(string(key), "-----BEGIN") {
					return usageErrorf("--key-file %s is not a PEM or OpenSSH private key", keyFile)
				}
				secret = string(key)
			}
			return createAccess(cmd, conn, out, map[string]string{"CloudName": "ssh", "Name": name, "SecretId": user, "SecretKey": secret})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "a name for this credential")
	cmd.Flags().StringVar(&user, "user", "", "the SSH user")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "the SSH private key file (PEM or OpenSSH)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the SSH password from standard input")
	outputFlag(cmd, &out, "text")
	for _, f := range []string{"name", "user"} {
		cmd.MarkFlagRequired(f)
	}
	cmd.MarkFlagsOneRequired("key-file", "password-stdin")
	cmd.MarkFlagsMutuallyExclusive("key-file", "password-stdin")
	return cmd
}

func newAccessAddWebhookCmd(conn *connFlags) *cobra.Command {
	var name, secretFile, out string
	var secretStdin bool
	cmd := &cobra.Command{
		Use:   "add-webhook --name NAME (--secret-file FILE | --secret-stdin)",
		Short: "Store a webhook signing secret (deliveries carry an HMAC-SHA256 signature)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if secretStdin {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10+1))
			} else {
				data, err = os.ReadFile(secretFile)
			}
			if err != nil {
				return fmt.Errorf("secret: %w", err)
			}
			secret := strings.TrimRight(string(data), "\r\n")
			if secret == "" {
				return usageErrorf("the webhook secret is empty")
			}
			return createAccess(cmd, conn, out, map[string]string{"CloudName": "webhook", "Name": name, "SecretId": name, "SecretKey": secret})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "a name for this credential (also its SecretId)")
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the secret (a trailing newline is dropped)")
	cmd.Flags().BoolVar(&secretStdin, "secret-stdin", false, "read the secret from standard input")
	outputFlag(cmd, &out, "text")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagsOneRequired("secret-file", "secret-stdin")
	cmd.MarkFlagsMutuallyExclusive("secret-file", "secret-stdin")
	return cmd
}

// readPassword reads one line from standard input: without echo on a
// terminal (prompting on standard error), else the first line of the pipe.
func readPassword(cmd *cobra.Command) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "SSH password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 64<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageErrorf("no password on standard input")
	}
	return pw, nil
}

// accessItem is one ListCloudAccess item with certfleet's Name and GmtCreate,
// which the SDK struct lacks.
type accessItem struct {
	AccessId      int64
	CloudName     string
	Name          string
	SecretId      string
	ServiceStatus string
	GmtCreate     string
}

func newAccessListCmd(conn *connFlags) *cobra.Command {
	var cloud string
	cmd := listCmd(conn, "list [--cloud-name NAME]", "List stored credentials (never their secrets)", func(cmd *cobra.Command, c *client, out string) error {
		raw, err := listAll(func(page int) ([]json.RawMessage, int64, error) {
			var r struct {
				CloudAccessList []json.RawMessage
				TotalCount      int64
			}
			err := c.call("ListCloudAccess", map[string]string{"CloudName": cloud, "CurrentPage": fmt.Sprint(page), "ShowSize": fmt.Sprint(pageSize)}, &r)
			return r.CloudAccessList, r.TotalCount, err
		})
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, raw, []string{"ID", "CLOUD", "NAME", "SECRET-ID", "CREATED"}, func(m json.RawMessage) []string {
			var it accessItem
			json.Unmarshal(m, &it)
			return []string{i64(it.AccessId), it.CloudName, it.Name, it.SecretId, msTime(it.GmtCreate)}
		})
	})
	cmd.Flags().StringVar(&cloud, "cloud-name", "", "only credentials for this CloudName (ssh, webhook, …)")
	return cmd
}

func newAccessDeleteCmd(conn *connFlags) *cobra.Command {
	return deleteCmd(conn, nounAccess, "Delete a stored credential (refused while a resource uses it)", ownDelete("DeleteCloudAccess", "AccessId"))
}

// ownDelete deletes through one of certfleet's own operations, which take the ID as param.
func ownDelete(action, param string) func(c *client, id int64) error {
	return func(c *client, id int64) error { return c.call(action, map[string]string{param: i64(id)}, nil) }
}

// deleteCmd is "<noun> delete ID": del deletes the object with that ID.
func deleteCmd(conn *connFlags, n noun, short string, del func(c *client, id int64) error) *cobra.Command {
	use := "delete ID|NAME"
	if n.named == nil {
		use = "delete ID"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(strings.TrimPrefix(use, "delete ")),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := dialObject(conn, n, args[0])
			if err != nil {
				return err
			}
			if err := del(c, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s %d.\n", n.what, id)
			return nil
		},
	}
}
