package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newIssuerCmd is `certfleet issuer`: the ACME CAs certificate requests
// name by ProductCode (CreateIssuer, ListIssuers, DeleteIssuer).
func newIssuerCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("issuer", "Manage the ACME CAs certificates are requested from (ProductCode)", conn)
	cmd.AddCommand(newIssuerAddCmd(conn), newIssuerListCmd(conn), newIssuerDeleteCmd(conn))
	return cmd
}

func newIssuerAddCmd(conn *connFlags) *cobra.Command {
	var directory, email, eabKeyID, keyType, chain, trustedCA, out string
	cmd := &cobra.Command{
		Use:   "add PRODUCT_CODE --directory URL [--email ADDR] [--key-type EC256] [--eab-key-id ID] [--trusted-ca FILE]",
		Short: "Add an ACME CA under a ProductCode (the EAB HMAC key from CERTFLEET_EAB_HMAC_KEY)",
		Args:  exactArgs("PRODUCT_CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			q := map[string]string{"ProductCode": args[0], "DirectoryUrl": directory, "Email": email, "EabKeyId": eabKeyID,
				"EabHmacKey": os.Getenv("CERTFLEET_EAB_HMAC_KEY"), "KeyType": keyType, "PreferredChain": chain}
			if trustedCA != "" {
				pem, err := os.ReadFile(trustedCA)
				if err != nil {
					return fmt.Errorf("--trusted-ca: %w", err)
				}
				q["TrustedCA"] = string(pem)
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			var r struct {
				IssuerId    int64
				ProductCode string
			}
			if err := c.call("CreateIssuer", q, &r); err != nil {
				return err
			}
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created issuer %s (%s).\n", r.ProductCode, directory)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&directory, "directory", "", "the CA's ACME directory URL (https://…)")
	f.StringVar(&email, "email", "", "contact email of the ACME account")
	f.StringVar(&eabKeyID, "eab-key-id", "", "external account binding key ID (with CERTFLEET_EAB_HMAC_KEY)")
	f.StringVar(&keyType, "key-type", "EC256", "key of issued certificates: EC256, EC384, RSA2048, RSA3072 or RSA4096")
	f.StringVar(&chain, "preferred-chain", "", "CommonName of the root to prefer among the CA's alternate chains")
	f.StringVar(&trustedCA, "trusted-ca", "", "PEM file the CA's own TLS certificate is checked against (private CAs such as step-ca)")
	outputFlag(cmd, &out, "text")
	cmd.MarkFlagRequired("directory")
	return cmd
}

type issuerItem struct {
	IssuerId       int64
	ProductCode    string
	DirectoryUrl   string
	Email          string
	EabKeyId       string
	KeyType        string
	PreferredChain string
	AccountUrl     string
	Default        bool
	CreateTime     int64
}

func newIssuerListCmd(conn *connFlags) *cobra.Command {
	return listCmd(conn, "list", "List issuers", func(cmd *cobra.Command, c *client, out string) error {
		var r struct{ Issuers []issuerItem }
		if err := c.call("ListIssuers", nil, &r); err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), out, r.Issuers, []string{"PRODUCT_CODE", "DIRECTORY", "KEY_TYPE", "EMAIL", "DEFAULT", "CREATED"},
			func(it issuerItem) []string {
				def := ""
				if it.Default {
					def = "yes"
				}
				return []string{it.ProductCode, it.DirectoryUrl, it.KeyType, it.Email, def,
					time.UnixMilli(it.CreateTime).UTC().Format(time.DateTime)}
			})
	})
}

func newIssuerDeleteCmd(conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete PRODUCT_CODE",
		Short: "Delete an issuer (refused while an order of it is in progress)",
		Args:  exactArgs("PRODUCT_CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.dial()
			if err != nil {
				return err
			}
			if err := c.call("DeleteIssuer", map[string]string{"ProductCode": args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted issuer %s.\n", args[0])
			return nil
		},
	}
}
