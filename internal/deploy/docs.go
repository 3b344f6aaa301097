package deploy

import (
	"fmt"
	"regexp"
	"strings"
)

// The generated parts of docs/deployers.md lie between a begin marker naming
// what goes there and an end marker:
//
//	<!-- BEGIN GENERATED products -->            every product, one row each
//	<!-- BEGIN GENERATED common -->              the keys every product accepts
//	<!-- BEGIN GENERATED config ssh/NGINX -->    a product's Config keys
//	<!-- BEGIN GENERATED access ssh/NGINX -->    what its CloudAccess holds
//	<!-- END GENERATED -->
var generatedRE = regexp.MustCompile(`(?s)(<!-- BEGIN GENERATED ([^>]*?) -->\n).*?(<!-- END GENERATED -->)`)

// RenderDocs rewrites every generated part of doc from the descriptions and
// the common keys, leaving the prose around them as it is. It fails on a
// marker naming an unknown product, and when a product has no config part
// (every product must be documented).
func RenderDocs(doc string, products []Description, common []Field) (string, error) {
	byName := map[string]Description{}
	for _, d := range products {
		byName[d.Name()] = d
	}
	documented := map[string]bool{}
	var errs []string
	out := generatedRE.ReplaceAllStringFunc(doc, func(block string) string {
		m := generatedRE.FindStringSubmatch(block)
		kind, name, _ := strings.Cut(strings.TrimSpace(m[2]), " ")
		var body string
		switch kind {
		case "products":
			body = productsTable(products)
		case "common":
			body = fieldsTable(common)
		case "config", "access":
			d, ok := byName[name]
			if !ok {
				errs = append(errs, fmt.Sprintf("marker %q names no product", m[2]))
				return block
			}
			if kind == "config" {
				documented[name] = true
				body = fieldsTable(d.Config)
			} else {
				body = accessTable(d)
			}
		default:
			errs = append(errs, fmt.Sprintf("marker %q is not products, common, config or access", m[2]))
			return block
		}
		return m[1] + body + m[3]
	})
	for _, d := range products {
		if !documented[d.Name()] {
			errs = append(errs, fmt.Sprintf("%s has no <!-- BEGIN GENERATED config %s --> part", d.Name(), d.Name()))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("deployers.md: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func productsTable(products []Description) string {
	var b strings.Builder
	b.WriteString("| CloudName | CloudProduct | What it does | Credential |\n|---|---|---|---|\n")
	for _, d := range products {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", d.CloudName, d.CloudProduct, cell(d.Summary), d.Access.Need)
	}
	return b.String()
}

func fieldsTable(fields []Field) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Required | Default | Meaning |\n|---|---|---|---|---|\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, typeCell(f), yesNo(f.Required), defaultCell(f), cell(f.Help))
	}
	return b.String()
}

func accessTable(d Description) string {
	var b strings.Builder
	fmt.Fprintf(&b, "A CloudAccess is **%s** (`CloudAccessId`; `CloudName=%s`).\n\n", d.Access.Need, d.AccessCloud())
	if d.Access.Need == AccessNone {
		return b.String()
	}
	b.WriteString("| Field | Meaning |\n|---|---|\n")
	fmt.Fprintf(&b, "| `SecretId` | %s |\n", cell(d.Access.SecretId))
	fmt.Fprintf(&b, "| `SecretKey` | %s (sealed at rest, never shown back) |\n", cell(d.Access.SecretKey))
	for _, f := range d.Access.Config {
		fmt.Fprintf(&b, "| `Config.%s` | %s, %s: %s |\n", f.Name, typeCell(f), map[bool]string{true: "required", false: "optional"}[f.Required], cell(f.Help))
	}
	return b.String()
}

func typeCell(f Field) string {
	s := string(f.Type)
	if f.Type == TypeInteger && f.bounded() {
		if f.Max == 0 {
			s += fmt.Sprintf(" ≥ %d", f.Min)
		} else {
			s += fmt.Sprintf(" %d–%d", f.Min, f.Max)
		}
	}
	if len(f.Allowed) > 0 {
		s += ": `" + strings.Join(f.Allowed, "`, `") + "`"
	}
	if f.Secret {
		s += " (secret)"
	}
	return s
}

func defaultCell(f Field) string {
	if f.Default == "" {
		return ""
	}
	return "`" + f.Default + "`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
