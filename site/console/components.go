package console

import (
	"errors"
	"net/http"

	"github.com/candorhq/candor/incidents"
)

// Components: each component's status, and a status set by hand that
// stands until it is cleared or an incident or maintenance changes the
// component (incidents.Store.SetComponentStatus).

type componentRow struct {
	incidents.ComponentInfo
	Override *incidents.ComponentOverride
}

func (c *Console) componentList(w http.ResponseWriter, r *http.Request, p *principal) error {
	return c.renderComponents(w, r, p, http.StatusOK, nil)
}

func (c *Console) renderComponents(w http.ResponseWriter, r *http.Request, p *principal, status int, errs incidents.FieldErrors) error {
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	ovs, err := c.o.Incidents.ComponentOverrides(r.Context())
	if err != nil {
		return err
	}
	rows := make([]componentRow, len(comps))
	for i, ci := range comps {
		rows[i].ComponentInfo = ci
		for j := range ovs {
			if ovs[j].Component == ci.Name {
				rows[i].Override = &ovs[j]
			}
		}
	}
	c.render(w, r, status, componentsPage(c.page(p, "Components"), rows, errs))
	return nil
}

// setComponent sets a component's status by hand, or with automatic=true
// gives it back to incidents, probes and maintenance.
func (c *Console) setComponent(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	var err error
	var ci incidents.ComponentInfo
	action := "component.status_set"
	if r.PostFormValue("automatic") == "true" {
		action = "component.status_cleared"
		ci, err = c.o.Incidents.ClearComponentStatus(r.Context(), id, p.actor())
	} else {
		ci, err = c.o.Incidents.SetComponentStatus(r.Context(), id, incidents.ComponentStatus(clip(r.PostFormValue("status"), 40)), p.actor())
	}
	if err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			if _, ok := fe.Field("component"); ok {
				return ErrNotFound
			}
			return c.renderComponents(w, r, p, http.StatusUnprocessableEntity, fe)
		}
		return err
	}
	c.auditReq(r, p.actor(), action, "component:"+ci.ID, map[string]any{"to": ci.Status})
	http.Redirect(w, r, "/admin/components", http.StatusSeeOther)
	return nil
}
