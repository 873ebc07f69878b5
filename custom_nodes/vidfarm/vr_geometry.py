"""Torch geometry for VR output: stereo from depth (DIBR), VR180 reprojection, 360 seam and pole treatment.

Conventions: images are ComfyUI IMAGE tensors [B, H, W, C] in 0..1; `nearness` is [B, H, W] in 0..1 with 1 = near
(the way Depth Anything / MiDaS-style depth nodes draw depth: bright is close). Disparity in pixels is

    d = baseline * W * (nearness - convergence)         (x_left - x_right = d; the screen plane has d = 0)

and each eye moves half of it, so the left eye sees near things shifted right. For 360 input the warp wraps around
the 0°/360° seam and d is scaled by cos(latitude), fading stereo to zero at the poles (omni-directional stereo).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

NEARNESS_LEVELS = 65535
BACKGROUND_TOLERANCE = 0.02  # nearness a mirrored fill pixel may exceed the chosen background by


def disparity_pixels(
    nearness: torch.Tensor, *, baseline: float, convergence: float, pole_fade: bool = False
) -> torch.Tensor:
    """Per-pixel disparity d (x_left - x_right) in pixels for nearness [B, H, W]."""
    width = nearness.shape[-1]
    disparity = baseline * width * (nearness - convergence)
    if pole_fade:
        rows = nearness.shape[-2]
        latitude = (0.5 - (torch.arange(rows, dtype=nearness.dtype) + 0.5) / rows) * math.pi
        disparity = disparity * torch.cos(latitude).view(rows, 1)
    return disparity


def forward_warp(
    images: torch.Tensor, nearness: torch.Tensor, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move every pixel by `shift` columns; where several land on one pixel the nearest wins (a z-buffer).

    Returns (warped images, warped nearness, hole mask [B, H, W] bool) — holes are disoccluded pixels."""
    b, h, w, c = images.shape
    columns = torch.arange(w, dtype=torch.int32).view(1, 1, w)
    target = torch.round(shift + columns).to(torch.int32)
    outside = (target < 0) | (target >= w)
    dump = b * h * w  # one extra slot collects everything that leaves the frame (cheaper than masking)
    row_start = torch.arange(0, dump, w, dtype=torch.int64).view(b, h, 1)
    slots = torch.where(outside, dump, target + row_start)
    levels = min(NEARNESS_LEVELS, (2**31 - 1) // w - 1)  # int32 keys: level * w + column must fit
    key = (nearness.clamp(0, 1) * levels).to(torch.int32) * w + columns  # nearest first, then rightmost source
    winner = torch.full((dump + 1,), -1, dtype=torch.int32)
    winner.scatter_reduce_(0, slots.reshape(-1), key.reshape(-1), reduce="amax", include_self=True)
    winner = winner[:dump].view(b, h, w)
    holes = winner < 0
    source = torch.where(holes, 0, winner % w).long()
    warped = torch.gather(images, 2, source.unsqueeze(-1).expand(b, h, w, c))
    warped_near = torch.gather(nearness, 2, source)
    return warped, warped_near, holes


def fill_disocclusions(
    images: torch.Tensor, nearness: torch.Tensor, holes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill holes from the background side of each gap by mirroring its texture (no foreground smear, no streak).

    For a hole pixel the nearest valid pixels left (L) and right (R) in its row are found; the farther of the two
    (the background revealed behind a moving edge) is the side to copy from. Its texture is mirrored into the gap
    (the pixel k steps into the hole takes the pixel k-1 steps away from it), falling back to the edge pixel
    when the mirrored one is itself a hole or belongs to the foreground."""
    b, h, w, c = images.shape
    columns = torch.arange(w, dtype=torch.int32).view(1, 1, w)
    left_all = torch.cummax(torch.where(holes, -1, columns), dim=-1).values
    backwards = torch.where(holes, -1, (w - 1) - columns).flip(-1)  # right neighbours as a cummax from the end
    right_all = (w - 1) - torch.cummax(backwards, dim=-1).values.flip(-1)
    hb, hy, hx = holes.nonzero(as_tuple=True)  # the arithmetic below runs on hole pixels only

    def near_at(x: torch.Tensor) -> torch.Tensor:
        return nearness[hb, hy, x.clamp(0, w - 1)]

    left, right = left_all[hb, hy, hx].long(), right_all[hb, hy, hx].long()
    has_left, has_right = left >= 0, right < w
    use_left = has_left & (~has_right | (near_at(left) <= near_at(right)))
    edge = torch.where(use_left, left, right).clamp(0, w - 1)
    mirror = torch.where(use_left, 2 * left + 1 - hx, 2 * right - 1 - hx)
    mirror_ok = (mirror >= 0) & (mirror < w)
    mirror = mirror.clamp(0, w - 1)
    edge_near = near_at(edge)
    mirror_ok &= ~holes[hb, hy, mirror] & (near_at(mirror) <= edge_near + BACKGROUND_TOLERANCE)
    chosen = torch.where(mirror_ok, mirror, edge)
    chosen = torch.where(has_left | has_right, chosen, hx)  # a row with nothing valid stays as it is
    source = torch.arange(w).view(1, 1, w).repeat(b, h, 1)
    source[hb, hy, hx] = chosen
    filled_near = nearness.clone()
    filled_near[hb, hy, hx] = edge_near
    filled = torch.gather(images, 2, source.unsqueeze(-1).expand(b, h, w, c))
    return filled, filled_near


def render_eye(
    images: torch.Tensor, nearness: torch.Tensor, shift: torch.Tensor, *, wrap: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One eye: warp, then fill. With `wrap` the row is treated as circular (360 equirectangular)."""
    if not wrap:
        warped, warped_near, holes = forward_warp(images, nearness, shift)
        filled, _ = fill_disocclusions(warped, warped_near, holes)
        return filled, holes
    w = images.shape[2]
    pad = min(w, int(math.ceil(float(shift.abs().max()))) + 2)
    wrapped = [torch.cat([t[:, :, w - pad :], t, t[:, :, :pad]], dim=2) for t in (images, nearness, shift)]
    warped, warped_near, holes = forward_warp(*wrapped)
    filled, _ = fill_disocclusions(warped, warped_near, holes)
    return filled[:, :, pad : pad + w], holes[:, :, pad : pad + w]


def stereo_from_depth(
    images: torch.Tensor,
    nearness: torch.Tensor,
    *,
    baseline: float,
    convergence: float,
    equirect: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(left, right, disoccluded mask [B, H, W] float: 1 where either eye had to be filled)."""
    disparity = disparity_pixels(nearness, baseline=baseline, convergence=convergence, pole_fade=equirect)
    left, holes_left = render_eye(images, nearness, disparity / 2, wrap=equirect)
    right, holes_right = render_eye(images, nearness, -disparity / 2, wrap=equirect)
    return left, right, (holes_left | holes_right).float()


def nearness_from_depth_image(depth: torch.Tensor, *, size: tuple[int, int], far_is_bright: bool) -> torch.Tensor:
    """A depth IMAGE [B, H, W, C] or MASK [B, H, W] → nearness [B, h, w] in 0..1, normalised over the clip."""
    plane = depth.mean(dim=-1) if depth.dim() == 4 else depth
    if plane.dim() == 2:
        plane = plane.unsqueeze(0)
    if tuple(plane.shape[-2:]) != size:
        plane = F.interpolate(plane.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    low, high = plane.min(), plane.max()  # over the whole clip: per-frame scaling would make depth flicker
    scaled = (plane - low) / (high - low).clamp_min(1e-6)
    return 1 - scaled if far_is_bright else scaled


# --- projections ------------------------------------------------------------------------------------------------
def half_equirect_from_perspective(images: torch.Tensor, *, fov_degrees: float, eye_size: int) -> torch.Tensor:
    """Reproject pinhole frames [B, H, W, C] (horizontal field of view `fov_degrees`) onto a 180°x180° half
    equirectangular eye [B, S, S, C]; directions outside the frame are black (a window in the dark)."""
    _, h, w, _ = images.shape
    centres = (torch.arange(eye_size, dtype=torch.float32) + 0.5) / eye_size
    lon = (centres - 0.5) * math.pi
    lat = (0.5 - centres) * math.pi
    lat_grid, lon_grid = torch.meshgrid(lat, lon, indexing="ij")
    x = torch.cos(lat_grid) * torch.sin(lon_grid)
    y = torch.sin(lat_grid)
    z = (torch.cos(lat_grid) * torch.cos(lon_grid)).clamp_min(1e-6)
    focal = (w / 2) / math.tan(math.radians(fov_degrees) / 2)
    px = focal * x / z / (w / 2)  # normalised -1..1 across the frame
    py = -focal * y / z / (h / 2)
    grid = torch.stack([px, py], dim=-1).unsqueeze(0).expand(images.shape[0], -1, -1, -1)
    sampled = F.grid_sample(images.permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=False)
    inside = ((px.abs() <= 1) & (py.abs() <= 1)).to(images.dtype)
    return sampled.permute(0, 2, 3, 1) * inside.view(1, eye_size, eye_size, 1)


def close_seam(images: torch.Tensor, *, band: int) -> torch.Tensor:
    """Make column 0 and column W-1 meet: ramp `band` columns on each side towards their common mean."""
    if band <= 0:
        return images
    w = images.shape[2]
    band = min(band, w // 4)
    meet = (images[:, :, :1] + images[:, :, -1:]) / 2
    ramp = (1 - torch.arange(band, dtype=images.dtype) / band).view(1, 1, band, 1)
    out = images.clone()
    out[:, :, :band] += (meet - images[:, :, :1]) * ramp
    out[:, :, w - band :] += (meet - images[:, :, -1:]) * torch.flip(ramp, [2])
    return out


def settle_poles(images: torch.Tensor, *, band: int) -> torch.Tensor:
    """At a pole every column is one point: blend `band` rows at top and bottom towards their row mean."""
    if band <= 0:
        return images
    h = images.shape[1]
    band = min(band, h // 4)
    out = images.clone()
    weight = (1 - (torch.arange(band, dtype=images.dtype) + 0.5) / band).view(1, band, 1, 1)
    top, bottom = images[:, :band], images[:, h - band :]
    out[:, :band] = top + (top.mean(dim=2, keepdim=True) - top) * weight
    out[:, h - band :] = bottom + (bottom.mean(dim=2, keepdim=True) - bottom) * torch.flip(weight, [1])
    return out


def pack_eyes(left: torch.Tensor, right: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "sbs":
        return torch.cat([left, right], dim=2)
    if layout == "tb":
        return torch.cat([left, right], dim=1)
    return left
