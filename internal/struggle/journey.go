package struggle

import (
	"slices"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect"
)

// note adds what an event tells agents to the visit's journey: pages with
// their dwell, errors and failed requests, each list bounded.
func (v *visit) note(ev *detect.Event) {
	j := &v.jour
	switch ev.Kind {
	case detect.KindPage:
		if n := len(j.Trail); n > 0 {
			last := &j.Trail[n-1]
			if last.Path == ev.Path && ev.Time.Sub(last.At) < 3*time.Second {
				return // the same page view reported twice
			}
			last.DwellMS = max(0, ev.Time.Sub(last.At).Milliseconds())
		}
		j.Trail = appendBounded(j.Trail, chat.PageVisit{Path: ev.Path, Title: ev.Title, At: ev.Time.UTC()}, chat.MaxTrail)
		v.offer.NewPage(ev.Path)
		v.page = ev.Path
	case detect.KindError, detect.KindReport:
		page := v.page
		for i := range j.Errors {
			e := &j.Errors[i]
			if e.Msg == ev.Msg && e.Page == page {
				e.Count++
				e.At = ev.Time.UTC()
				return
			}
		}
		j.Errors = appendBounded(j.Errors, chat.ErrorSeen{At: ev.Time.UTC(), Msg: ev.Msg, Page: page, Count: 1}, chat.MaxErrors)
	case detect.KindRequest:
		for i := range j.Requests {
			r := &j.Requests[i]
			if r.Method == ev.Method && r.Path == ev.Path && r.Status == ev.Status {
				r.Count++
				r.At = ev.Time.UTC()
				return
			}
		}
		j.Requests = appendBounded(j.Requests, chat.RequestSeen{At: ev.Time.UTC(), Method: ev.Method, Path: ev.Path, Status: ev.Status, Count: 1}, chat.MaxRequests)
	}
}

// found adds a finding to the journey and returns its sentence.
func (v *visit) found(f *detect.Finding) string {
	said := f.Sentence()
	ev := &f.Evidence
	v.jour.Findings = appendBounded(v.jour.Findings, chat.FindingSeen{
		At: ev.Last.UTC(), Rule: f.Rule, Sentence: said, Shadow: f.Shadow,
		Signal: string(f.Signal), Page: ev.Page, Count: ev.Count,
		Endpoint: ev.Path, Status: ev.Status, Message: ev.Message, Field: ev.Field, Selector: ev.Selector,
	}, chat.MaxFindings)
	return said
}

// appendBounded appends x and drops the oldest entries beyond max.
func appendBounded[T any](list []T, x T, max int) []T {
	list = append(list, x)
	if len(list) > max {
		list = slices.Delete(list, 0, len(list)-max)
	}
	return list
}

// sortLive orders live visitors by score, then by how long they have been
// on the site.
func sortLive(list []LiveVisitor) {
	slices.SortStableFunc(list, func(a, b LiveVisitor) int {
		return compareLive(a.Score, a.OnlineSince, b.Score, b.OnlineSince)
	})
}

// compareLive is sortLive's order: higher score first, then earlier
// online.
func compareLive(aScore float64, aSince time.Time, bScore float64, bSince time.Time) int {
	switch {
	case aScore > bScore:
		return -1
	case aScore < bScore:
		return 1
	}
	return aSince.Compare(bSince)
}
