// Package notifytest runs a real SMTP server on loopback (emersion/go-smtp)
// that records the messages it receives, for tests of email notifications.
//
// It is not for production use: it keeps every message in memory.
package notifytest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// Mail is one received message, decoded.
type Mail struct {
	From    string   // envelope sender
	To      []string // envelope recipients
	Header  mail.Header
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part
	// ContentType is the top-level media type (multipart/alternative).
	ContentType string
	// AuthUser is who authenticated ("" if nobody).
	AuthUser string
	// TLS reports whether the session was encrypted.
	TLS bool
}

// Options configure an SMTPServer.
type Options struct {
	// Addr to listen on. Defaults to 127.0.0.1:0.
	Addr string
	// STARTTLS offers STARTTLS with a self-signed certificate for 127.0.0.1.
	STARTTLS bool
	// User and Password, when User is set, are required (PLAIN).
	User, Password string
}

// SMTPServer records what it receives.
type SMTPServer struct {
	Addr string
	opts Options
	srv  *smtp.Server

	mu   sync.Mutex
	mail []Mail
	ch   chan struct{}
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, o Options) *SMTPServer {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatalf("smtp server: listen %s: %v", o.Addr, err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), opts: o, ch: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, conn: c}, nil }))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = !o.STARTTLS
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.ErrorLog = quietLog{}
	if o.STARTTLS {
		ch := certstest.New(t, certstest.Options{DNSNames: []string{"127.0.0.1", "localhost"}})
		cert, err := tls.X509KeyPair([]byte(ch.CertPEM), []byte(ch.KeyPEM))
		if err != nil {
			t.Fatalf("smtp server: certificate: %v", err)
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

type quietLog struct{}

func (quietLog) Printf(string, ...interface{}) {}
func (quietLog) Println(...interface{})        {}

// Mail returns the messages received so far.
func (s *SMTPServer) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Wait waits until at least n messages arrived and returns them all.
func (s *SMTPServer) Wait(t testing.TB, n int, timeout time.Duration) []Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Mail(); len(m) >= n {
			return m
		}
		select {
		case <-s.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("smtp server: %d messages after %v, want %d", len(s.Mail()), timeout, n)
		}
	}
}

type session struct {
	s    *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.opts.User || password != x.s.opts.Password || x.s.opts.User == "" {
			return errors.New("invalid credentials")
		}
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.User != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: x.from, To: x.to, AuthUser: x.user}
	if _, ok := x.conn.TLSConnectionState(); ok {
		m.TLS = true
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	m.ContentType = mt
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(p)
			pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			switch pt {
			case "text/plain":
				m.Text = strings.ReplaceAll(string(body), "\r\n", "\n")
			case "text/html":
				m.HTML = strings.ReplaceAll(string(body), "\r\n", "\n")
			}
		}
	} else {
		body, _ := io.ReadAll(msg.Body)
		m.Text = string(body)
	}
	x.s.mu.Lock()
	x.s.mail = append(x.s.mail, m)
	x.s.mu.Unlock()
	select {
	case x.s.ch <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }
