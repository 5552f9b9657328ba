-- Argo CD health of a MappedDomain, from the conditions the controller writes
-- (kstatus style: Ready, Reconciling, Stalled) and its stage.
local hs = {}

local function condition(type)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == type then
        return c
      end
    end
  end
  return nil
end

local function said(c)
  return c.reason .. ": " .. (c.message or "")
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the controller does not write to Closte"
  return hs
end

if obj.status == nil or obj.status.observedGeneration == nil
    or (obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the latest spec"
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = said(stalled)
  return hs
end

local ready = condition("Ready")
if obj.status.stage == "failed" or obj.status.stage == "ssl-failed" then
  hs.status = "Degraded"
  if ready ~= nil then
    hs.message = said(ready)
  else
    hs.message = "stage " .. obj.status.stage
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = said(ready)
else
  hs.message = "Waiting for the controller"
end
return hs
