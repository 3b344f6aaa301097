package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/egress"
)

// SMTP TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
)

// SMTPConfig is how email leaves. Password is a secret: it is never logged
// nor stored.
type SMTPConfig struct {
	// Addr is the server's host:port; empty disables email.
	Addr string
	// TLS is none, starttls or implicit. Defaults to starttls.
	TLS string
	// User and Password, when User is set, authenticate with PLAIN (only
	// over TLS, or to a loopback server).
	User     string
	Password string
	// From is the sender address. Defaults to certfleet@<host of Addr>.
	From string
	// InsecureSkipVerify accepts any server certificate (tests, self-signed).
	InsecureSkipVerify bool
}

// Validate checks the configuration.
func (c SMTPConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--smtp-addr %q: want host:port", c.Addr)
	}
	switch c.TLS {
	case "", TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("--smtp-tls %q: want none, starttls or implicit", c.TLS)
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			return fmt.Errorf("--smtp-from %q: %v", c.From, err)
		}
	}
	return nil
}

func (c SMTPConfig) from() string {
	if c.From != "" {
		return c.From
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	return "certfleet@" + host
}

// errNoSMTP is a permanent failure of email rows when no server is configured.
var errNoSMTP = errors.New("smtp: no SMTP server configured (set --smtp-addr)")

// sendMail delivers one message to one recipient within ctx's deadline.
func sendMail(ctx context.Context, dial *egress.AccountDialer, c SMTPConfig, to string, m Message) error {
	if c.Addr == "" {
		return permanent(errNoSMTP)
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	fromAddr, err := mail.ParseAddress(c.from())
	if err != nil {
		return permanent(fmt.Errorf("smtp: sender %q: %w", c.from(), err))
	}
	msg, err := buildMIME(fromAddr.String(), to, m, time.Now())
	if err != nil {
		return permanent(err)
	}
	tlsCfg := &tls.Config{ServerName: host, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := dial.DialContext(dctx, "tcp", c.Addr)
	cancel()
	if egress.IsRefused(err) {
		return permanent(fmt.Errorf("smtp: connect %s: %w", c.Addr, err))
	}
	if err != nil {
		return fmt.Errorf("smtp: connect %s: %w", c.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if c.TLS == TLSImplicit {
		conn = tls.Client(conn, tlsCfg)
	}
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %s: %w", c.Addr, err)
	}
	defer cl.Close()
	if err := cl.Hello("certfleet"); err != nil {
		return fmt.Errorf("smtp: HELO: %w", err)
	}
	if c.TLS == "" || c.TLS == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return permanent(fmt.Errorf("smtp: %s does not offer STARTTLS (set --smtp-tls none or implicit)", c.Addr))
		}
		if err := cl.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if c.User != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.User, c.Password, host)); err != nil {
			return classify(fmt.Errorf("smtp: authenticate as %s: %w", c.User, err))
		}
	}
	if err := cl.Mail(fromAddr.Address); err != nil {
		return classify(fmt.Errorf("smtp: MAIL FROM: %w", err))
	}
	if err := cl.Rcpt(to); err != nil {
		return classify(fmt.Errorf("smtp: RCPT TO %s: %w", to, err))
	}
	w, err := cl.Data()
	if err != nil {
		return classify(fmt.Errorf("smtp: DATA: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return classify(fmt.Errorf("smtp: message refused: %w", err))
	}
	cl.Quit()
	return nil
}

// classify makes SMTP 5xx replies permanent.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return permanent(err)
	}
	return err
}

// buildMIME writes a multipart/alternative message (plain text, then HTML).
func buildMIME(from, to string, m Message, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	id := make([]byte, 12)
	rand.Read(id)
	_, domain, _ := strings.Cut(from, "@")
	domain = strings.TrimSuffix(domain, ">")
	hdr := []string{
		"From: " + from,
		"To: " + to,
		"Subject: " + mime.QEncoding.Encode("utf-8", m.Subject),
		"Date: " + now.Format(time.RFC1123Z),
		"Message-ID: <" + hex.EncodeToString(id) + "@" + domain + ">",
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=" + mw.Boundary(),
		"Auto-Submitted: auto-generated",
	}
	for _, h := range hdr {
		if strings.ContainsAny(h, "\r\n") {
			return nil, fmt.Errorf("smtp: header with a line break: %q", h)
		}
	}
	head := strings.Join(hdr, "\r\n") + "\r\n\r\n"
	for _, part := range []struct{ ctype, body string }{{"text/plain; charset=utf-8", m.Text}, {"text/html; charset=utf-8", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n")))
		qp.Close()
	}
	mw.Close()
	return append([]byte(head), buf.Bytes()...), nil
}
