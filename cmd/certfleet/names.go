package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// A noun whose objects a command can name: a number is an ID, anything else
// is looked up by exact name through the noun's list operation.
type noun struct {
	what string // "certificate", "resource", …
	list string // the list command, for messages
	// named lists the objects whose name may be name (the list operations'
	// keyword search narrows it; the exact match is made here).
	named func(c *client, name string) ([]namedObject, error)
}

type namedObject struct {
	ID   int64
	Name string
}

var (
	nounJob  = noun{what: "job", list: "certfleet job list"} // by ID only
	nounCert = noun{"certificate", "certfleet cert list", func(c *client, name string) ([]namedObject, error) {
		var out []namedObject
		// Expired certificates are listed only when asked for.
		for _, status := range []string{"", "EXPIRED"} {
			items, err := listAll(func(page int) ([]*cas.ListUserCertificateOrderResponseBodyCertificateOrderList, int64, error) {
				r, err := c.cas.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{OrderType: tea.String("UPLOAD"),
					CurrentPage: tea.Int64(int64(page)), ShowSize: tea.Int64(pageSize), Keyword: tea.String(name), Status: optional(status)})
				if err != nil {
					return nil, 0, err
				}
				return r.Body.CertificateOrderList, tea.Int64Value(r.Body.TotalCount), nil
			})
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				out = append(out, namedObject{tea.Int64Value(it.CertificateId), tea.StringValue(it.Name)})
			}
		}
		return out, nil
	}}
	nounResource = noun{"resource", "certfleet resource list", func(c *client, name string) ([]namedObject, error) {
		items, err := listResources(c, &cas.ListCloudResourcesRequest{Keyword: tea.String(name)})
		out := make([]namedObject, len(items))
		for i, it := range items {
			out[i] = namedObject{it.Id, it.Name}
		}
		return out, err
	}}
	nounContact = noun{"contact", "certfleet contact list", func(c *client, name string) ([]namedObject, error) {
		items, err := listAll(func(page int) ([]*cas.ListContactResponseBodyContactList, int64, error) {
			r, err := c.cas.ListContact(&cas.ListContactRequest{CurrentPage: tea.Int32(int32(page)), ShowSize: tea.Int32(pageSize), Keyword: tea.String(name)})
			if err != nil {
				return nil, 0, err
			}
			return r.Body.ContactList, tea.Int64Value(r.Body.TotalCount), nil
		})
		out := make([]namedObject, len(items))
		for i, it := range items {
			out[i] = namedObject{tea.Int64Value(it.ContactId), tea.StringValue(it.Name)}
		}
		return out, err
	}}
	nounAccess = noun{"credential", "certfleet access list", func(c *client, name string) ([]namedObject, error) {
		return listAll(func(page int) ([]namedObject, int64, error) {
			var r struct {
				CloudAccessList []struct {
					AccessId int64
					Name     string
				}
				TotalCount int64
			}
			err := c.call("ListCloudAccess", map[string]string{"CurrentPage": fmt.Sprint(page), "ShowSize": fmt.Sprint(pageSize)}, &r)
			out := make([]namedObject, len(r.CloudAccessList))
			for i, it := range r.CloudAccessList {
				out[i] = namedObject{it.AccessId, it.Name}
			}
			return out, r.TotalCount, err
		})
	}}
)

// isID reports whether s is written as an ID (a positive number).
func isID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// resolve turns an ID or exact name into an ID. A name nothing has is an
// error naming the list command; a name several objects share is refused
// with their IDs.
func (c *client) resolve(n noun, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if id, ok := isID(s); ok {
		return id, nil
	}
	if n.named == nil {
		return 0, usageErrorf("%s ID must be a positive number, not %q", n.what, s)
	}
	if s == "" {
		return 0, usageErrorf("empty %s name", n.what)
	}
	objs, err := n.named(c, s)
	if err != nil {
		return 0, err
	}
	var ids []int64
	seen := map[int64]bool{}
	for _, o := range objs {
		if o.Name == s && !seen[o.ID] {
			seen[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	slices.Sort(ids)
	switch len(ids) {
	case 0:
		return 0, fmt.Errorf("no %s is named %q; see %s", n.what, s, n.list)
	case 1:
		return ids[0], nil
	}
	return 0, fmt.Errorf("%d %ss are named %q (IDs %s); give the ID instead", len(ids), n.what, s, strings.ReplaceAll(joinInt64(ids), ",", ", "))
}

// resolveAll resolves each of a repeatable flag's values.
func (c *client) resolveAll(n noun, values []string) ([]int64, error) {
	out := make([]int64, 0, len(values))
	for _, v := range values {
		id, err := c.resolve(n, v)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// resourceItem is one ListCloudResources item with certfleet's additions
// (observed certificate, Stale), which the SDK struct lacks.
type resourceItem struct {
	Id               int64
	Name             string
	CloudName        string
	CloudProduct     string
	Domain           string
	Config           json.RawMessage
	CloudAccessId    string `json:",omitempty"`
	RegionId         string `json:",omitempty"`
	InstanceId       string `json:",omitempty"`
	ListenerPort     string `json:",omitempty"`
	CertId           int64
	CertName         string
	CertStartTime    string
	CertEndTime      string
	ObservedSha2     string
	ObservedSubject  string
	ObservedNotAfter string
	ObservedAt       string
	ObservedError    string
	Stale            bool
	GmtCreate        string
	GmtModified      string
}

// listResources pages through ListCloudResources with the filters of req.
func listResources(c *client, req *cas.ListCloudResourcesRequest) ([]resourceItem, error) {
	return listAll(func(page int) ([]resourceItem, int64, error) {
		q := map[string]string{"CurrentPage": fmt.Sprint(page), "ShowSize": fmt.Sprint(pageSize),
			"CloudName": tea.StringValue(req.CloudName), "CloudProduct": tea.StringValue(req.CloudProduct), "Keyword": tea.StringValue(req.Keyword)}
		var r struct {
			Data []struct {
				resourceItem
				Config string
			}
			Total int64
		}
		if err := c.call("ListCloudResources", q, &r); err != nil {
			return nil, 0, err
		}
		out := make([]resourceItem, len(r.Data))
		for i, d := range r.Data {
			out[i] = d.resourceItem
			out[i].Config = json.RawMessage(d.Config)
			if !json.Valid(out[i].Config) {
				b, _ := json.Marshal(d.Config)
				out[i].Config = b
			}
		}
		return out, r.Total, nil
	})
}

// getResource finds one resource by ID (there is no Get operation: it pages
// through the list).
func getResource(c *client, id int64) (resourceItem, error) {
	items, err := listResources(c, &cas.ListCloudResourcesRequest{})
	if err != nil {
		return resourceItem{}, err
	}
	for _, it := range items {
		if it.Id == id {
			return it, nil
		}
	}
	return resourceItem{}, fmt.Errorf("NotFound.CloudResource: no resource %d; see certfleet resource list", id)
}

// dialObject dials the server and resolves the ID or name arg of a noun:
// what every command on one object does first.
func dialObject(conn *connFlags, n noun, arg string) (*client, int64, error) {
	c, err := conn.dial()
	if err != nil {
		return nil, 0, err
	}
	id, err := c.resolve(n, arg)
	return c, id, err
}
