-- Every recomputation of component statuses looks up the overrides people set
-- by hand: the latest override event per component, among events that belong
-- to no incident. Without this index that is a scan of those events.
create index incident_events_component_overrides on incident_events
    ((payload->'components'->>0), id desc)
    where kind in ('component_overridden', 'component_override_cleared');
