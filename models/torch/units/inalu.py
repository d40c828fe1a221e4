"""iNALU [iNALU]: separate weights, input-independent gate, sign recovery, clipped log-space sum."""
from __future__ import annotations

import torch

from models import reference
from models.torch.units.base import Unit, _bias, _mm, nac_w, weights_am


class INALU(Unit):
    name = "inalu"

    def weight(self):
        return weights_am(self)

    def forward(self, x):
        wa, wm = nac_w(self.W_hat_a, self.M_hat_a), nac_w(self.W_hat_m, self.M_hat_m)
        a = _mm(x, wa)
        z = _mm(torch.log(torch.clamp(x.abs(), min=reference.INALU_EPS)), wm)
        m = torch.exp(torch.clamp(z, max=reference.INALU_OMEGA))
        aw = wm.abs().unsqueeze(-3)
        sign = torch.prod(torch.sign(x).unsqueeze(-1) * aw + 1 - aw, dim=-2)
        g = torch.sigmoid(_bias(self.g))
        return g * a + (1 - g) * m * sign

    def regulariser(self):
        total = 0.0
        for k in ("W_hat_a", "M_hat_a", "W_hat_m", "M_hat_m", "g"):
            dims = (-1,) if k == "g" else (-2, -1)
            total = total + torch.relu(reference.INALU_T - getattr(self, k).abs()).mean(dim=dims)
        return total
