package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/pflag"
)

// Environment variables the client commands read.
//
// certfleet's own AccessKey variables come first; the Alibaba Cloud SDK's
// standard ones are read when they are unset, so a shell that holds real
// Alibaba Cloud credentials keeps them apart from certfleet's.
const (
	envEndpoint      = "CERTFLEET_ENDPOINT"
	envKeyID         = "CERTFLEET_ACCESS_KEY_ID"
	envSecret        = "CERTFLEET_ACCESS_KEY_SECRET"
	envAlibabaKeyID  = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	envAlibabaSecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	envCAFile        = "CERTFLEET_CA_FILE"
	envProfile       = "CERTFLEET_PROFILE"
	envConfig        = "CERTFLEET_CONFIG"
)

// connFlags are the connection flags every client command takes.
type connFlags struct {
	endpoint, keyID, secret, profile, caFile string
}

func (f *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "", "server address, host:port or http(s)://host:port (env "+envEndpoint+")")
	fs.StringVar(&f.keyID, "access-key-id", "", "AccessKey ID (env "+envKeyID+", then "+envAlibabaKeyID+")")
	fs.StringVar(&f.secret, "access-key-secret", "", "AccessKey secret (env "+envSecret+", then "+envAlibabaSecret+"); prefer the environment or a profile")
	fs.StringVar(&f.profile, "profile", "", "named profile of the config file (env "+envProfile+", default \"default\")")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA that signed an https endpoint's certificate, for a private CA (env "+envCAFile+")")
}

// settings are resolved connection settings, with where each came from
// ("--endpoint", "CERTFLEET_ENDPOINT", `profile "default" in …`), for
// error messages.
type settings struct {
	Endpoint, AccessKeyID, AccessKeySecret, CAFile        string
	EndpointFrom, AccessKeyIDFrom, SecretFrom, CAFileFrom string
}

// resolve applies the precedence flags > environment > profile.
func (f *connFlags) resolve() (settings, error) {
	name, explicit := f.profile, f.profile != ""
	if name == "" {
		name, explicit = os.Getenv(envProfile), os.Getenv(envProfile) != ""
	}
	if name == "" {
		name = "default"
	}
	cfg, path, err := loadConfig()
	if err != nil {
		return settings{}, err
	}
	p, ok := cfg.Profiles[name]
	if !ok && explicit {
		return settings{}, fmt.Errorf("profile %q is not in %s; create it with: certfleet configure --profile %s", name, path, name)
	}
	fromProfile := fmt.Sprintf("profile %q in %s", name, path)
	// pick returns the first set of the flag, the environment variables and
	// the profile's value, and where it came from.
	pick := func(flagName, flag string, envs []string, prof string) (string, string) {
		if flag != "" {
			return flag, "--" + flagName
		}
		for _, env := range envs {
			if v := os.Getenv(env); v != "" {
				return v, env
			}
		}
		if prof != "" {
			return prof, fromProfile
		}
		return "", ""
	}
	var s settings
	s.Endpoint, s.EndpointFrom = pick("endpoint", f.endpoint, []string{envEndpoint}, p.Endpoint)
	s.AccessKeyID, s.AccessKeyIDFrom = pick("access-key-id", f.keyID, []string{envKeyID, envAlibabaKeyID}, p.AccessKeyID)
	s.AccessKeySecret, s.SecretFrom = pick("access-key-secret", f.secret, []string{envSecret, envAlibabaSecret}, p.AccessKeySecret)
	s.CAFile, s.CAFileFrom = pick("ca-file", f.caFile, []string{envCAFile}, p.CAFile)
	var missing []string
	if s.Endpoint == "" {
		missing = append(missing, "endpoint (--endpoint or "+envEndpoint+")")
	}
	if s.AccessKeyID == "" {
		missing = append(missing, "access key ID (--access-key-id or "+envKeyID+")")
	}
	if s.AccessKeySecret == "" {
		missing = append(missing, "access key secret ("+envSecret+" or --access-key-secret)")
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("no %s; set them, or run: certfleet configure", strings.Join(missing, ", "))
	}
	return s, nil
}

// parseEndpoint splits an endpoint into the SDK's host[:port] and protocol.
// Without a scheme, loopback hosts default to http and others to https.
func parseEndpoint(s string) (host, scheme string, err error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", "", fmt.Errorf("endpoint %q: %w", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", "", fmt.Errorf("endpoint %q: scheme must be http or https", s)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", "", fmt.Errorf("endpoint %q: want scheme://host[:port] and nothing else", s)
		}
		return u.Host, u.Scheme, nil
	}
	if s == "" || strings.ContainsAny(s, "/?# ") {
		return "", "", fmt.Errorf("endpoint %q: want host:port or http(s)://host:port", s)
	}
	hostname := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		hostname = h
	}
	scheme = "https"
	if hostname == "localhost" || (net.ParseIP(hostname) != nil && net.ParseIP(hostname).IsLoopback()) {
		scheme = "http"
	}
	return s, scheme, nil
}

// client talks to one certfleet server: the CAS SDK for the standard
// operations, its embedded generic client (CallApi) for certfleet's own.
type client struct {
	cas *cas.Client
}

// session is the connection the running command dialled, kept so that main
// can explain a failure (which endpoint, from where, what the transport saw).
// A CLI process runs one command, so one is enough.
var session *conn

func (f *connFlags) dial() (*client, error) {
	s, err := f.resolve()
	if err != nil {
		return nil, err
	}
	host, scheme, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return nil, err
	}
	cfg := &openapi.Config{
		AccessKeyId: tea.String(s.AccessKeyID), AccessKeySecret: tea.String(s.AccessKeySecret),
		Endpoint: tea.String(host), Protocol: tea.String(scheme),
		ConnectTimeout: tea.Int(5000), ReadTimeout: tea.Int(30000),
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file (from %s): %w", s.CAFileFrom, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s (from %s) holds no PEM certificate", s.CAFile, s.CAFileFrom)
		}
		cfg.Ca = tea.String(string(pem))
	}
	cn := &conn{settings: s, url: scheme + "://" + host}
	cfg.HttpClient = cn
	c, err := cas.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	session = cn
	return &client{cas: c}, nil
}

// call runs an action through the generic client and decodes the response
// body into out (when not nil). Use it for certfleet's own operations, and
// for standard ones whose certfleet fields the SDK structs lack.
func (c *client) call(action string, query map[string]string, out any) error {
	q := map[string]*string{}
	for k, v := range query {
		if v != "" {
			q[k] = tea.String(v)
		}
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String("2020-04-07"), Protocol: tea.String("HTTP"),
		Pathname: tea.String("/"), Method: tea.String("POST"), AuthType: tea.String("AK"), Style: tea.String("RPC"),
		ReqBodyType: tea.String("formData"), BodyType: tea.String("json")}
	resp, err := c.cas.CallApi(params, &openapiutil.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	b, err := json.Marshal(resp["body"])
	if err != nil {
		return fmt.Errorf("%s: response: %w", action, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: response: %w", action, err)
	}
	return nil
}

// profile is one named set of connection settings in the config file.
type profile struct {
	Endpoint        string `json:"Endpoint,omitempty"`
	AccessKeyID     string `json:"AccessKeyId,omitempty"`
	AccessKeySecret string `json:"AccessKeySecret,omitempty"`
	CAFile          string `json:"CAFile,omitempty"`
}

type configFile struct {
	Profiles map[string]profile `json:"Profiles"`
}

// configPath is $CERTFLEET_CONFIG, else $XDG_CONFIG_HOME/certfleet/config.json,
// else ~/.config/certfleet/config.json.
func configPath() (string, error) {
	if p := os.Getenv(envConfig); p != "" {
		return p, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "certfleet", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config: no home directory; set %s: %w", envConfig, err)
	}
	return filepath.Join(home, ".config", "certfleet", "config.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig() (configFile, string, error) {
	cfg := configFile{Profiles: map[string]profile{}}
	path, err := configPath()
	if err != nil {
		return cfg, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, fmt.Errorf("config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, path, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Profiles == nil {
		cfg.Profiles = map[string]profile{}
	}
	return cfg, path, nil
}

// saveConfig writes the config file atomically with mode 0600.
func saveConfig(cfg configFile, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

var (
	sdkCodePrefix = regexp.MustCompile(`^code: \d+, `)
	sdkReqSuffix  = regexp.MustCompile(` request id: ([^ ]*)$`)
)

// requestIDOf reads RequestId from an SDK error's Data, the error body as JSON.
func requestIDOf(data *string) *string {
	var body struct{ RequestId string }
	if data == nil || json.Unmarshal([]byte(*data), &body) != nil || body.RequestId == "" {
		return nil
	}
	return &body.RequestId
}

// errorLine renders err as one line: an API error as
// "<Code>: <Message> (request <RequestId>)", anything else flattened.
func errorLine(err error) string {
	var code, msg, rid *string
	var ce *openapi.ClientError
	var se *openapi.ServerError
	var te *openapi.ThrottlingError
	var sdk *tea.SDKError
	var dsdk *dara.SDKError
	switch {
	case errors.As(err, &ce):
		code, msg, rid = ce.Code, ce.Message, ce.RequestId
	case errors.As(err, &se):
		code, msg, rid = se.Code, se.Message, se.RequestId
	case errors.As(err, &te):
		code, msg, rid = te.Code, te.Message, te.RequestId
	case errors.As(err, &dsdk): // what the CAS client's methods return
		code, msg, rid = dsdk.Code, dsdk.Message, requestIDOf(dsdk.Data)
	case errors.As(err, &sdk):
		code, msg, rid = sdk.Code, sdk.Message, requestIDOf(sdk.Data)
	}
	if code == nil && msg == nil {
		return oneLine(err.Error())
	}
	m := tea.StringValue(msg)
	if rid == nil || *rid == "" {
		if sm := sdkReqSuffix.FindStringSubmatch(m); sm != nil {
			rid = &sm[1]
		}
	}
	m = sdkReqSuffix.ReplaceAllString(sdkCodePrefix.ReplaceAllString(m, ""), "")
	line := tea.StringValue(code)
	if m != "" {
		if line != "" {
			line += ": "
		}
		line += m
	}
	if r := tea.StringValue(rid); r != "" {
		line += " (request " + r + ")"
	}
	return oneLine(line)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
