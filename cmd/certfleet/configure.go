package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newConfigureCmd() *cobra.Command {
	var name string
	var p profile
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Save an endpoint and AccessKey as a named profile",
		Long: `Save an endpoint and AccessKey as a named profile in
~/.config/certfleet/config.json (or $CERTFLEET_CONFIG), mode 0600.

Values not given as flags are prompted for (on standard error; the secret is
not echoed on a terminal); an empty answer keeps the profile's current value.
With every value given as a flag, nothing is prompted. --ca-file (never
prompted) names the CA certificate for an https endpoint a private CA signed.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			cur := cfg.Profiles[name]
			in := bufio.NewReader(cmd.InOrStdin())
			ask := func(flag, given, label, current string, secret bool) (string, error) {
				if cmd.Flags().Changed(flag) {
					return strings.TrimSpace(given), nil
				}
				shown := current
				if secret && current != "" {
					shown = "****" + current[max(0, len(current)-4):]
				}
				if shown != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s [%s]: ", label, shown)
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: ", label)
				}
				var line string
				if f, ok := cmd.InOrStdin().(*os.File); ok && secret && term.IsTerminal(int(f.Fd())) {
					b, err := term.ReadPassword(int(f.Fd()))
					fmt.Fprintln(cmd.ErrOrStderr())
					if err != nil {
						return "", fmt.Errorf("configure: %w", err)
					}
					line = string(b)
				} else {
					l, err := in.ReadString('\n')
					if err != nil && (err != io.EOF || l == "") {
						if err == io.EOF {
							fmt.Fprintln(cmd.ErrOrStderr())
							return current, nil
						}
						return "", fmt.Errorf("configure: %w", err)
					}
					line = l
				}
				if v := strings.TrimSpace(line); v != "" {
					return v, nil
				}
				return current, nil
			}
			var np profile
			if np.Endpoint, err = ask("endpoint", p.Endpoint, "Endpoint (host:port or http(s)://host:port)", cur.Endpoint, false); err != nil {
				return err
			}
			if np.AccessKeyID, err = ask("access-key-id", p.AccessKeyID, "AccessKey ID", cur.AccessKeyID, false); err != nil {
				return err
			}
			if np.AccessKeySecret, err = ask("access-key-secret", p.AccessKeySecret, "AccessKey secret", cur.AccessKeySecret, true); err != nil {
				return err
			}
			// The CA file is never prompted for: --ca-file sets it ("" clears it).
			np.CAFile = cur.CAFile
			if cmd.Flags().Changed("ca-file") {
				np.CAFile = ""
				if p.CAFile != "" {
					abs, err := filepath.Abs(p.CAFile)
					if err != nil {
						return err
					}
					if _, err := os.ReadFile(abs); err != nil {
						return &exitError{code: exitUsage, err: fmt.Errorf("--ca-file: %w", err)}
					}
					np.CAFile = abs
				}
			}
			if np.Endpoint == "" || np.AccessKeyID == "" || np.AccessKeySecret == "" {
				return usageErrorf("a profile needs an endpoint, an AccessKey ID and its secret")
			}
			if _, _, err := parseEndpoint(np.Endpoint); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			cfg.Profiles[name] = np
			if err := saveConfig(cfg, path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Saved profile %q to %s.\n", name, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "profile", "default", "name of the profile to write")
	f.StringVar(&p.Endpoint, "endpoint", "", "server address, host:port or http(s)://host:port")
	f.StringVar(&p.AccessKeyID, "access-key-id", "", "AccessKey ID")
	f.StringVar(&p.AccessKeySecret, "access-key-secret", "", "AccessKey secret (visible to other local users in the process list; prefer the prompt)")
	f.StringVar(&p.CAFile, "ca-file", "", "PEM file of the private CA that signed the endpoint's certificate (stored as an absolute path; \"\" clears it)")
	return cmd
}

func newEnvCmd() *cobra.Command {
	var dataDir, endpoint string
	var alibabaNames bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports for the local node's root credentials",
		Long: `Print one shell line exporting CERTFLEET_ENDPOINT, CERTFLEET_ACCESS_KEY_ID
and CERTFLEET_ACCESS_KEY_SECRET from <data-dir>/root-credentials.json, for
use on the server's own machine:

  eval "$(certfleet env --data-dir ./certfleet-data --endpoint 127.0.0.1:8080)"

certfleet reads its own variables before ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET,
so the shell's real Alibaba Cloud credentials stay as they are. With
--alibaba-names the line sets ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET instead, for
other Alibaba Cloud SDK clients pointed at certfleet.

The line contains the secret: it goes only to standard output.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			host, scheme, err := parseEndpoint(endpoint)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			path := filepath.Join(dataDir, "root-credentials.json")
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("root credentials: %w (they exist only when the server generated them; otherwise use CERTFLEET_ROOT_ACCESS_KEY_ID/SECRET)", err)
			}
			var c struct{ AccessKeyId, AccessKeySecret string }
			if err := json.Unmarshal(data, &c); err != nil || c.AccessKeyId == "" || c.AccessKeySecret == "" {
				return fmt.Errorf("root credentials: %s is not valid", path)
			}
			idVar, secretVar := envKeyID, envSecret
			if alibabaNames {
				idVar, secretVar = envAlibabaKeyID, envAlibabaSecret
			}
			fmt.Fprintf(cmd.OutOrStdout(), "export %s=%s %s=%s %s=%s\n", envEndpoint, shellQuote(scheme+"://"+host),
				idVar, shellQuote(c.AccessKeyId), secretVar, shellQuote(c.AccessKeySecret))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./certfleet-data", "the node's data directory (env CERTFLEET_DATA_DIR)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "127.0.0.1:8080", "the node's address (env CERTFLEET_ENDPOINT)")
	cmd.Flags().BoolVar(&alibabaNames, "alibaba-names", false, "export ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET instead of certfleet's own names")
	return cmd
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
