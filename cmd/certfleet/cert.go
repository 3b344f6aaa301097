package main

import (
	"fmt"
	"os"
	"strings"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"
)

func newCertCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := nounCmd("cert", "Upload, list, show and delete certificates", conn)
	cmd.AddCommand(newCertUploadCmd(conn), newCertListCmd(conn), newCertShowCmd(conn), newCertDeleteCmd(conn))
	return cmd
}

func newCertUploadCmd(conn *connFlags) *cobra.Command {
	var name, certFile, keyFile, out string
	cmd := &cobra.Command{
		Use:   "upload --name NAME --cert FILE --key FILE",
		Short: "Upload a certificate (full chain PEM) and its private key",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			certPEM, err := os.ReadFile(certFile)
			if err != nil {
				return fmt.Errorf("--cert: %w", err)
			}
			keyPEM, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			r, err := c.cas.UploadUserCertificate(&cas.UploadUserCertificateRequest{
				Name: tea.String(name), Cert: tea.String(string(certPEM)), Key: tea.String(string(keyPEM))})
			if err != nil {
				return err
			}
			id := tea.Int64Value(r.Body.CertId)
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]int64{"CertId": id})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Uploaded certificate %d (%s).\n", id, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "certificate name, unique in the account")
	f.StringVar(&certFile, "cert", "", "PEM file: the leaf certificate, then the intermediates")
	f.StringVar(&keyFile, "key", "", "PEM file: the private key")
	outputFlag(cmd, &out, "text")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("cert")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newCertListCmd(conn *connFlags) *cobra.Command {
	var keyword, status string
	cmd := listCmd(conn, "list [--keyword WORD] [--status ISSUED|WILLEXPIRED|EXPIRED]", "List uploaded certificates (by default those not expired)", func(cmd *cobra.Command, c *client, out string) error {
		items, err := listAll(func(page int) ([]*cas.ListUserCertificateOrderResponseBodyCertificateOrderList, int64, error) {
			req := &cas.ListUserCertificateOrderRequest{OrderType: tea.String("UPLOAD"), CurrentPage: tea.Int64(int64(page)), ShowSize: tea.Int64(pageSize),
				Keyword: optional(keyword), Status: optional(strings.ToUpper(status))}
			r, err := c.cas.ListUserCertificateOrder(req)
			if err != nil {
				return nil, 0, err
			}
			return r.Body.CertificateOrderList, tea.Int64Value(r.Body.TotalCount), nil
		})
		if err != nil {
			return err
		}
		if out == "json" {
			// One name per concept: a certificate's ID is CertId everywhere (README, "JSON output").
			return printJSON(cmd.OutOrStdout(), renameKey(nonNil(items), "CertificateId", "CertId"))
		}
		return printList(cmd.OutOrStdout(), out, items, []string{"ID", "NAME", "DOMAINS", "STATUS", "EXPIRES"},
			func(it *cas.ListUserCertificateOrderResponseBodyCertificateOrderList) []string {
				return []string{i64(tea.Int64Value(it.CertificateId)), tea.StringValue(it.Name), truncate(tea.StringValue(it.Sans), 60),
					tea.StringValue(it.Status), msTimeInt(tea.Int64Value(it.CertEndTime))}
			})
	})
	cmd.Flags().StringVar(&keyword, "keyword", "", "match name, domains or instance ID")
	cmd.Flags().StringVar(&status, "status", "", "ISSUED, WILLEXPIRED (30 days or less left) or EXPIRED")
	return cmd
}

func newCertShowCmd(conn *connFlags) *cobra.Command {
	var withKey bool
	var out string
	cmd := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show a certificate: names, validity, fingerprints",
		Long:  "Show a certificate. The private key is fetched and printed only with --with-key.",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, "text", "json"); err != nil {
				return err
			}
			c, id, err := dialObject(conn, nounCert, args[0])
			if err != nil {
				return err
			}
			r, err := c.cas.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(id), CertFilter: tea.Bool(!withKey)})
			if err != nil {
				return err
			}
			b := r.Body
			if out == "json" {
				return printJSON(cmd.OutOrStdout(), renameKey(b, "Id", "CertId"))
			}
			w := cmd.OutOrStdout()
			expiry := tea.StringValue(b.EndDate)
			if tea.BoolValue(b.Expired) {
				expiry += " (expired)"
			}
			rows := [][2]string{
				{"ID", i64(tea.Int64Value(b.Id))}, {"Name", tea.StringValue(b.Name)}, {"Common name", tea.StringValue(b.Common)},
				{"SANs", strings.ReplaceAll(tea.StringValue(b.Sans), ",", ", ")}, {"Issuer", tea.StringValue(b.Issuer)},
				{"Algorithm", tea.StringValue(b.Algorithm)}, {"Valid from", tea.StringValue(b.StartDate)}, {"Expires", expiry},
				{"Serial", tea.StringValue(b.SerialNo)}, {"SHA-1", tea.StringValue(b.Fingerprint)}, {"SHA-256", tea.StringValue(b.Sha2)},
			}
			for _, r := range rows {
				fmt.Fprintf(w, "%-12s %s\n", r[0]+":", r[1])
			}
			if withKey {
				fmt.Fprintf(w, "\n%s\n%s", strings.TrimSpace(tea.StringValue(b.Cert)), tea.StringValue(b.Key))
				if tea.StringValue(b.Key) == "" {
					return fmt.Errorf("the private key was not returned: the caller is not allowed yundun-cert:GetUserCertificatePrivateKey (attach AliyunYundunCertFullAccess or a policy allowing it)")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withKey, "with-key", false, "also print the certificate PEM and its private key")
	outputFlag(cmd, &out, "text")
	return cmd
}

func newCertDeleteCmd(conn *connFlags) *cobra.Command {
	return deleteCmd(conn, nounCert, "Delete a certificate (refused while an unfinished job uses it)", func(c *client, id int64) error {
		_, err := c.cas.DeleteUserCertificate(&cas.DeleteUserCertificateRequest{CertId: tea.Int64(id)})
		return err
	})
}
