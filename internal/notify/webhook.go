package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/egress"
)

// Webhook formats, chosen by the URL's host.
const (
	FormatSlack    = "slack" // {"text": …}: Slack, Mattermost, Rocket.Chat and most others
	FormatDingTalk = "dingtalk"
	FormatFeishu   = "feishu" // Feishu and Lark
	FormatWeCom    = "wecom"
)

// DefaultFormats maps chat-bot hosts to their formats. Any other host gets FormatSlack.
var DefaultFormats = map[string]string{
	"oapi.dingtalk.com":   FormatDingTalk,
	"open.feishu.cn":      FormatFeishu,
	"open.larksuite.com":  FormatFeishu,
	"qyapi.weixin.qq.com": FormatWeCom,
}

// FormatFor returns the format a webhook URL's host expects, looking it up
// in formats (host, or host:port, → format) and then in DefaultFormats.
func FormatFor(rawURL string, formats map[string]string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return FormatSlack
	}
	for _, m := range []map[string]string{formats, DefaultFormats} {
		if f, ok := m[strings.ToLower(u.Host)]; ok {
			return f
		}
		if f, ok := m[strings.ToLower(u.Hostname())]; ok {
			return f
		}
	}
	return FormatSlack
}

// maxChatText bounds the text of one chat message (DingTalk and WeCom
// reject markdown over 4096 bytes; the list is already bounded by MaxListed).
const maxChatText = 4000

// Payload returns the JSON body for a webhook of the given format.
func Payload(format string, m Message) ([]byte, error) {
	md := clipBytes(m.Markdown, maxChatText)
	var v any
	switch format {
	case FormatDingTalk:
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Subject, "text": md}}
	case FormatFeishu:
		v = map[string]any{"msg_type": "text", "content": map[string]string{"text": clipBytes(m.Text, maxChatText)}}
	case FormatWeCom:
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": md}}
	case FormatSlack:
		v = map[string]string{"text": md}
	default:
		return nil, fmt.Errorf("notify: unknown webhook format %q", format)
	}
	return json.Marshal(v)
}

func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// postWebhook delivers one payload. A non-2xx status, or a 2xx whose JSON
// body carries a non-zero errcode/code (DingTalk, WeCom, Feishu), is an
// error; 4xx other than 408 and 429 are permanent.
func postWebhook(ctx context.Context, hc *http.Client, target string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("webhook: %w", redacted{err}))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "certfleet-notify")
	resp, err := hc.Do(req)
	if err != nil {
		err = fmt.Errorf("webhook: %s: %w", redactURL(target), redacted{err})
		if egress.IsRefused(err) {
			return permanent(err)
		}
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	if resp.StatusCode/100 == 3 {
		return permanent(fmt.Errorf("webhook: %s answered %s: redirects are not followed; set the contact's webhook to the final address", redactURL(target), resp.Status))
	}
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("webhook: %s answered %s: %s", redactURL(target), resp.Status, clip(string(data), 200))
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return permanent(err)
		}
		return err
	}
	var r struct {
		ErrCode *int   `json:"errcode"`
		Code    *int   `json:"code"`
		ErrMsg  string `json:"errmsg"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(data, &r) == nil {
		for _, c := range []*int{r.ErrCode, r.Code} {
			if c != nil && *c != 0 {
				return permanent(fmt.Errorf("webhook: %s refused the message: code %d %s%s", redactURL(target), *c, r.ErrMsg, r.Msg))
			}
		}
	}
	return nil
}

// redactURL redacts the credentials inside a webhook URL (chat-bot URLs
// carry their access token in the query) with the one redaction
// audit.RedactURLs.
func redactURL(raw string) string { return audit.RedactURLs(raw) }

// redacted is an error whose text (net/http's names the whole URL) has the
// credentials of its URLs redacted; errors.Is and As still see the cause.
type redacted struct{ err error }

func (e redacted) Error() string { return audit.RedactURLs(e.err.Error()) }
func (e redacted) Unwrap() error { return e.err }
