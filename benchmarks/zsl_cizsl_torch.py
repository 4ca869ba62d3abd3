"""CIZSL in PyTorch: the same model and training iteration as zsl_jax, as the speed baseline.

Written for this benchmark after train_CIZSL.py / models.py of mhelhoseiny/CIZSL (ICCV 2019): the
generator (text 7551 -> 1000, noise 100, hidden 4086, features 3584, LeakyReLU, tanh), the
discriminator (hidden 4086, critic and 150-way classifier heads), Xavier-normal init, Adam(1e-4,
0.5, 0.9); one iteration = one hallucination batch, 5 critic steps (WGAN + classification + gradient
penalty 10), one generator step (adversarial, classification, visual pivots, ||W||^2, ||W_text||_2,1,
realism and Sharma-Mittal creativity terms with learned orders). Differences to the original kept
for a fair comparison: the visual pivot term is computed with index_add over the batch instead of
a Python loop over the 150 classes, and the hallucinated samples are generated in the generator step
(same values; the original generates them before the critic steps).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    def __init__(self, text_dim: int, feature_dim: int, hidden: int, noise_dim: int, reduced: int = 1000):
        super().__init__()
        self.text_reduction = nn.Linear(text_dim, reduced)
        self.hidden = nn.Linear(noise_dim + reduced, hidden)
        self.out = nn.Linear(hidden, feature_dim)

    def forward(self, z, text):
        h = torch.cat([z, self.text_reduction(text)], 1)
        return torch.tanh(self.out(F.leaky_relu(self.hidden(h), 0.01)))


class Discriminator(nn.Module):
    def __init__(self, feature_dim: int, hidden: int, num_classes: int):
        super().__init__()
        self.shared = nn.Linear(feature_dim, hidden)
        self.critic = nn.Linear(hidden, 1)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = F.relu(self.shared(x))
        return self.critic(h)[:, 0], self.classifier(h)


def xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class TorchCizsl:
    """Players, optimisers and one training iteration (`step`) on in-memory features.

    Built and stepped inside `with torch.device(device):` it runs on that device (the arrays are moved
    there; torch's factory functions follow the context)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, seen_text: np.ndarray, *, batch_size: int = 1000,
                 hidden: int = 4086, noise_dim: int = 100, creativity_weight: float = 1e-4, seed: int = 0,
                 reduced: int = 1000):
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        device = torch.empty(0).device
        self.features = torch.from_numpy(features).to(device)
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(device)
        self.text = torch.from_numpy(seen_text).to(device)
        num_classes = len(seen_text)
        centroids = np.zeros((num_classes, features.shape[1]), np.float32)
        for c in range(num_classes):
            centroids[c] = features[labels == c].mean(0)
        self.centroids = torch.from_numpy(centroids).to(device)
        self.batch_size, self.noise_dim, self.weight = batch_size, noise_dim, creativity_weight
        self.g = Generator(seen_text.shape[1], features.shape[1], hidden, noise_dim, reduced)
        self.d = Discriminator(features.shape[1], hidden, num_classes)
        xavier(self.g)
        xavier(self.d)
        self.orders = nn.Parameter(torch.empty(2).uniform_(-1, 1))
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=1e-4, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=1e-4, betas=(0.5, 0.9))
        self.opt_o = torch.optim.Adam([self.orders], lr=1e-4, betas=(0.5, 0.999))
        self._perm, self._cursor = self.rng.permutation(len(labels)), 0

    def load_flax_params(self, generator: dict, discriminator: dict, orders=None) -> 'TorchCizsl':
        """Copies zsl_jax's player parameters ((in, out) kernels) into the torch players, so both sides start
        from the same weights; the optimiser states stay fresh (as ours at step 0)."""
        def copy(module: nn.Linear, params: dict) -> None:
            module.weight.copy_(torch.from_numpy(np.array(params['kernel'], np.float32).T))
            module.bias.copy_(torch.from_numpy(np.array(params['bias'], np.float32)))

        with torch.no_grad():
            for name in ('text_reduction', 'hidden', 'out'):
                copy(getattr(self.g, name), generator[name])
            for name in ('shared', 'critic', 'classifier'):
                copy(getattr(self.d, name), discriminator[name])
            if orders is not None:
                self.orders.copy_(torch.from_numpy(np.array(orders, np.float32)))
        return self

    def draw(self):
        """The next batch of the epoch permutation (a new permutation when it runs out)."""
        if self._cursor + self.batch_size > len(self._perm):
            self._perm, self._cursor = self.rng.permutation(len(self._perm)), 0
        index = torch.from_numpy(self._perm[self._cursor:self._cursor + self.batch_size]).to(self.labels.device)
        self._cursor += self.batch_size
        return self.features[index], self.labels[index]

    def critic_step(self):
        x, y = self.draw()
        with torch.no_grad():
            fake = self.g(torch.randn(self.batch_size, self.noise_dim), self.text[y])
        critic, logits = self.d(torch.cat([x, fake]))
        critic_real, critic_fake = critic.chunk(2)
        logits_real, logits_fake = logits.chunk(2)
        mix = torch.rand(self.batch_size, 1)
        x_hat = (mix * x + (1 - mix) * fake).requires_grad_(True)
        grads = torch.autograd.grad(self.d(x_hat)[0].sum(), x_hat, create_graph=True)[0]
        penalty = ((grads.norm(2, dim=1) - 1) ** 2).mean()
        loss = (critic_fake.mean() - critic_real.mean() + F.cross_entropy(logits_real, y)
                + F.cross_entropy(logits_fake, y) + 10.0 * penalty)
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step()

    def generator_step(self, creative_labels):
        x, y = self.draw()
        b = self.batch_size
        first = self.text[creative_labels[torch.randperm(b)]]
        second = self.text[creative_labels[torch.randperm(b)]]
        a = 0.2 + 0.6 * torch.rand(b, 1)
        t_h = F.normalize(a * first + (1 - a) * second, dim=1)
        generated = self.g(torch.randn(2 * b, self.noise_dim), torch.cat([self.text[y], t_h]))
        critic, logits = self.d(torch.cat([generated, x]))
        fake = generated[:b]
        classes = len(self.text)
        sums = torch.zeros(classes, fake.shape[1]).index_add_(0, y, fake.float())
        counts = torch.bincount(y, minlength=classes).float()
        present = counts > 0
        pivot = (sums[present] / counts[present, None] - self.centroids[present]).norm(dim=1).sum() / classes
        reg_w = sum((m.weight ** 2).sum() for m in (self.g.text_reduction, self.g.hidden, self.g.out))
        reg_text = self.g.text_reduction.weight.pow(2).sum(0).sqrt().sum()
        alpha, beta = 0.2 + 0.6 * torch.sigmoid(self.orders)
        p = F.softmax(logits[b:2 * b], dim=1)
        s = ((p + 1e-5) ** alpha * (1.0 / classes) ** (1 - alpha)).sum(1)
        divergence = (s ** ((1 - beta) / (1 - alpha)) - 1) / (beta - 1)
        normalized = (divergence - divergence.min()) / (divergence.max() - divergence.min())
        loss = (-critic[:b].mean() + (F.cross_entropy(logits[2 * b:], y) + F.cross_entropy(logits[:b], y)) / 2
                + pivot + 1e-3 * reg_w + 1e-4 * reg_text - critic[b:2 * b].mean() + self.weight * normalized.mean())
        self.opt_g.zero_grad()
        self.opt_o.zero_grad()
        loss.backward()
        self.opt_g.step()
        self.opt_o.step()
        return loss

    def step(self):
        """One CIZSL iteration: hallucination labels, 5 critic steps, 1 generator step."""
        _, creative_labels = self.draw()
        for _ in range(5):
            self.critic_step()
        return self.generator_step(creative_labels)
