package deploy

import "strings"

// EchoesKey reports whether s, text a target sent back (a command's output,
// a response body), quotes a private key: it contains a PEM "PRIVATE KEY"
// label, or any aligned 16-character piece of the base64 lines of a PRIVATE
// KEY block in one of pems (so any quoted run of 31 characters or more is
// caught). pems may hold certificates too: only key blocks count, and a
// piece also found in a certificate among pems does not (an ECDSA key embeds
// its public key, which a target may well quote). Deployers withhold such
// text from their errors.
func EchoesKey(s string, pems ...string) bool {
	if strings.Contains(s, "PRIVATE KEY") {
		return true
	}
	var public strings.Builder
	for _, p := range pems {
		inKey := false
		for line := range strings.Lines(p) {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "-----") {
				inKey = strings.HasPrefix(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY")
			} else if !inKey {
				public.WriteString(line)
			}
		}
	}
	pub := public.String()
	for _, p := range pems {
		inKey := false
		for line := range strings.Lines(p) {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "-----") {
				inKey = strings.HasPrefix(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY")
				continue
			}
			if !inKey {
				continue
			}
			for i := 0; i+16 <= len(line); i += 16 {
				if piece := line[i : i+16]; strings.Contains(s, piece) && !strings.Contains(pub, piece) {
					return true
				}
			}
		}
	}
	return false
}
