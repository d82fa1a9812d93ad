-- Argo CD health of a recon.dev ReconJob, mapped from its phase as DESIGN.md's GitOps health
-- table says, with the operator's own words as the message:
--   Pending, Validating, Queued, Running -> Progressing
--   Succeeded -> Healthy, Failed -> Degraded, Cancelled -> Suspended (stopped on purpose)
local hs = {}

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function said(status, wanted, fallback)
  local c = condition(status, wanted)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick the job up"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
if phase == "Pending" or phase == "Validating" then
  hs.status = "Progressing"
  hs.message = phase .. ": " .. said(status, "Reconciling", "checking the capture")
elseif phase == "Queued" then
  hs.status = "Progressing"
  hs.message = "Queued: " .. said(status, "Admitted", "waiting for a free run slot")
  if status.queuePosition ~= nil then
    hs.message = hs.message .. " (position " .. tostring(status.queuePosition) .. ")"
  end
elseif phase == "Running" then
  hs.status = "Progressing"
  local scheduled = condition(status, "Scheduled")
  local progress = status.progress
  if scheduled ~= nil and scheduled.status == "False" then
    -- The scheduler's own words, e.g. "0/3 nodes are available: 3 Insufficient nvidia.com/gpu".
    hs.message = "Running: " .. said(status, "Scheduled", "the pod cannot be scheduled")
  elseif progress ~= nil and progress.percent ~= nil then
    hs.message = "Running: " .. tostring(progress.percent) .. "%"
    if progress.stage ~= nil then
      hs.message = hs.message .. " " .. progress.stage
    end
    if progress.message ~= nil and progress.message ~= "" then
      hs.message = hs.message .. ": " .. progress.message
    end
  else
    hs.message = "Running: " .. said(status, "Running", said(status, "Admitted", "the Job was created"))
  end
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = said(status, "Succeeded", "the reconstruction succeeded")
  if status.outputs ~= nil and status.outputs.mesh ~= nil then
    hs.message = hs.message .. "; mesh: " .. status.outputs.mesh
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  local failed = condition(status, "Failed")
  if failed ~= nil and failed.reason ~= nil and failed.reason ~= "" then
    hs.message = failed.reason .. ": " .. said(status, "Failed", "the job failed")
  else
    hs.message = said(status, "Failed", "the job failed")
  end
elseif phase == "Cancelled" then
  hs.status = "Suspended"
  hs.message = said(status, "Cancelled", "the job was cancelled")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
