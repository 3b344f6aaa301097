package deploy

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Product is a deployer that describes itself. Every catalog entry is one.
type Product interface {
	Deployer
	Describe() Description
}

// Catalog is what the engine and the API know of deployers: look one up by
// (CloudName, CloudProduct), list the descriptions. Only internal/server
// builds the real one (deploy/registry), so the packages that take a Catalog
// do not import any target's client libraries.
type Catalog interface {
	// Lookup returns the product, or false when none has that name.
	Lookup(cloudName, cloudProduct string) (Product, bool)
	// Products returns every product's description, sorted by CloudName then
	// CloudProduct.
	Products() []Description
}

// List is a Catalog over a fixed set of products. It is read-only after
// NewList and safe for concurrent use.
type List struct {
	byName map[[2]string]Product
	descs  []Description
}

var _ Catalog = (*List)(nil)

// NewList builds a catalog of products. It panics when two products share a
// name or a description is malformed: a catalog is written by hand, once.
func NewList(products ...Product) *List {
	l := &List{byName: make(map[[2]string]Product, len(products))}
	for _, p := range products {
		d := p.Describe()
		if err := d.check(); err != nil {
			panic(err)
		}
		k := [2]string{d.CloudName, d.CloudProduct}
		if _, dup := l.byName[k]; dup {
			panic("deploy: two products named " + d.Name())
		}
		l.byName[k] = p
		l.descs = append(l.descs, d)
	}
	sort.Slice(l.descs, func(i, j int) bool {
		a, b := l.descs[i], l.descs[j]
		if a.CloudName != b.CloudName {
			return a.CloudName < b.CloudName
		}
		return a.CloudProduct < b.CloudProduct
	})
	return l
}

// Lookup implements Catalog.
func (l *List) Lookup(cloudName, cloudProduct string) (Product, bool) {
	p, ok := l.byName[[2]string{cloudName, cloudProduct}]
	return p, ok
}

// Products implements Catalog. The slice is shared: do not modify it.
func (l *List) Products() []Description { return l.descs }

// check reports a malformed description: a product that cannot be validated
// or documented properly.
func (d Description) check() error {
	if d.CloudName == "" || d.CloudProduct == "" || d.Summary == "" {
		return fmt.Errorf("deploy: product %q needs CloudName, CloudProduct and Summary", d.Name())
	}
	seen := map[string]bool{}
	for _, fs := range [][]Field{d.Config, d.Access.Config} {
		clear(seen)
		for _, f := range fs {
			switch f.Type {
			case TypeString, TypeInteger, TypeBoolean, TypeStringList, TypeObject:
			default:
				return fmt.Errorf("deploy: %s key %s has unknown type %q", d.Name(), f.Name, f.Type)
			}
			if f.Name == "" || f.Help == "" || seen[f.Name] {
				return fmt.Errorf("deploy: %s key %q needs a unique name and a help sentence", d.Name(), f.Name)
			}
			seen[f.Name] = true
		}
	}
	switch d.Access.Need {
	case AccessNone, AccessOptional, AccessRequired:
	default:
		return fmt.Errorf("deploy: %s has access need %q", d.Name(), d.Access.Need)
	}
	return nil
}

// Validate checks a resource's product Config (the generic keys already
// taken out) and whether it has a credential, for an unconfined (root)
// account: Check with a Target holding only config.
func Validate(p Product, config json.RawMessage, hasAccess bool) error {
	_, err := Check(p, Target{Config: config}, hasAccess)
	return err
}

// Check validates t's product Config (the generic keys already taken out)
// for t's account and whether it has a credential: the description's rules
// first, then the product's own checks (TargetValidator, else
// ConfigValidator) on the normalized Config. It returns what the resource
// claims exclusively (Claimer), nil for most products. Every error is
// permanent and names the key.
func Check(p Product, t Target, hasAccess bool) (claims []string, err error) {
	d := p.Describe()
	if err := d.CheckAccess(hasAccess); err != nil {
		return nil, err
	}
	norm, err := d.NormalizeConfig(t.Config)
	if err != nil {
		return nil, err
	}
	t.Config = norm
	if v, ok := p.(TargetValidator); ok {
		if err := v.ValidateTarget(t); err != nil {
			return nil, Permanent(err)
		}
	} else if v, ok := p.(ConfigValidator); ok {
		if err := v.ValidateConfig(norm); err != nil {
			return nil, Permanent(err)
		}
	}
	if c, ok := p.(Claimer); ok {
		claims, err := c.Claims(t)
		if err != nil {
			return nil, Permanent(err)
		}
		return claims, nil
	}
	return nil, nil
}
