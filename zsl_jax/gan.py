"""One training iteration of GAZSL / CIZSL as a pure, jit-compiled function, and its initial state.

An iteration (one generator step) draws `critic_steps + 1` disjoint batches of real features (plus
one more whose labels pick CIZSL's hallucination pairs) from the epoch permutation, as the
originals' FeatDataLayer does, runs the critic steps in `lax.scan`, then one generator step:

  critic:    E[D(G)] - E[D(x)] + CE(C(x), y) + CE(C(G), y) + lambda_gp GP           (GAZSL Eq. 2-4)
  generator: -E[D(G)] + (CE(C(x), y) + CE(C(G), y)) / 2 + lambda_c pivot(G, y)
             + lambda_w sum ||W||^2 + lambda_z ||W_text||_{2,1}                       (GAZSL Eq. 3-6)
  CIZSL adds, on G(t_h) with t_h = a t_i + (1 - a) t_j, a ~ U[0.2, 0.8] over random seen pairs:
             -E[D(G(t_h))] + lambda_cr * divergence(softmax C(G(t_h)) || uniform)    (CIZSL Eq. 5-7)

The state holds one TrainState per player ('generator', 'discriminator', and 'orders' for the
learned Sharma-Mittal / Renyi / Tsallis orders) and the seen classes' text and visual pivots.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from gen_runtime.optim import make_optimizer
from gen_runtime.train_state import TrainState
from zsl_jax import divergences, losses
from zsl_jax.models import Discriminator, Generator
from zsl_jax.problem import ZslProblem

State = dict[str, Any]


def draws_per_step(config: ml_collections.ConfigDict) -> int:
    """Batches of real features one iteration consumes: the critic's, the generator's, CIZSL's pairs."""
    return config.loss.critic_steps + 1 + (config.model.variant == 'cizsl')


def l2_normalize_rows(x: jax.Array) -> jax.Array:
    """Rows divided by their L2 norm; zero rows stay zero (sklearn.preprocessing.normalize)."""
    norm = jnp.sqrt(jnp.sum(x**2, axis=-1, keepdims=True))
    return x / jnp.where(norm == 0, 1.0, norm)


def hallucinated_text(key: jax.Array, text: jax.Array, labels: jax.Array, low: float, high: float,
                      normalize: bool) -> jax.Array:
    """t_h = a t_i + (1 - a) t_j, a ~ U[low, high], for two independent shuffles of the classes of a
    batch of real labels (CIZSL Sec. 3.1), then L2-normalised per row as the original does."""
    k1, k2, k3 = jax.random.split(key, 3)
    first = text[jax.random.permutation(k1, labels)]
    second = text[jax.random.permutation(k2, labels)]
    mix = jax.random.uniform(k3, (labels.shape[0], 1), minval=low, maxval=high)
    out = mix * first + (1.0 - mix) * second
    return l2_normalize_rows(out) if normalize else out


def generator_kernels(params: dict) -> list[jax.Array]:
    return [layer['kernel'] for layer in params.values()]


def creativity_loss(cizsl: ml_collections.ConfigDict, logits: jax.Array, orders: jax.Array | None) -> jax.Array:
    """lambda_cr times the batch divergence from uniform; min-max normalised over the batch as in CIZSL
    (which leaves its KL variant unnormalised)."""
    values = divergences.divergence_from_uniform(cizsl.divergence, logits, orders)
    if cizsl.minmax_normalize and cizsl.divergence != 'kl':
        return cizsl.creativity_weight * divergences.minmax_normalized_mean(values)
    return cizsl.creativity_weight * jnp.mean(values)


def make_update(config: ml_collections.ConfigDict, generator: Generator,
                discriminator: Discriminator) -> Callable[[State, dict, jax.Array], tuple[State, dict]]:
    """update(state, batch, rng) -> (state, metrics): one generator iteration with its critic steps."""
    loss_cfg, cizsl = config.loss, config.cizsl
    batch_size, noise_dim = config.training.batch_size, config.model.noise_dim
    critic_steps, draws = loss_cfg.critic_steps, draws_per_step(config)
    creative = config.model.variant == 'cizsl'

    def critic_step(g_params: dict, text: jax.Array, d_state: TrainState,
                    xs: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[TrainState, dict]:
        real, labels, key = xs
        k_z, k_mix = jax.random.split(key)
        z = jax.random.normal(k_z, (batch_size, noise_dim))
        fake = generator.apply({'params': g_params}, z, text[labels])
        mix = jax.random.uniform(k_mix, (batch_size, 1))

        def loss_fn(d_params: dict) -> tuple[jax.Array, dict]:
            def apply(x: jax.Array) -> tuple[jax.Array, jax.Array]:
                return discriminator.apply({'params': d_params}, x)

            critic_both, logits_both = apply(jnp.concatenate([real, fake]))  # one pass; rows are independent
            critic_real, critic_fake = jnp.split(critic_both, 2)
            logits_real, logits_fake = jnp.split(logits_both, 2)
            wgan = losses.wasserstein_critic_loss(critic_real, critic_fake)
            cls_real = losses.classification_loss(logits_real, labels)
            cls_fake = losses.classification_loss(logits_fake, labels)
            penalty = losses.gradient_penalty(lambda x: apply(x)[0], real, fake, mix)
            loss = wgan + cls_real + cls_fake + loss_cfg.gp_weight * penalty
            return loss, {'d_loss': loss, 'wasserstein': -wgan, 'gradient_penalty': penalty,
                          'd_cls_real': cls_real, 'd_cls_fake': cls_fake}

        grads, metrics = jax.grad(loss_fn, has_aux=True)(d_state.params)
        return d_state.apply_gradients(grads), metrics

    def generator_loss(params: dict, d_params: dict, classes: dict, real: jax.Array, labels: jax.Array,
                       creative_labels: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        g_params, text = params['generator'], classes['text']
        k_z, k_text, k_zc = jax.random.split(key, 3)
        z = jax.random.normal(k_z, (batch_size, noise_dim))
        if creative:  # G(t_h) for hallucinated texts t_h, generated in the same pass as G(t_y)
            t_h = hallucinated_text(k_text, text, creative_labels, cizsl.mix_low, cizsl.mix_high,
                                    cizsl.normalize_hallucinated)
            z = jnp.concatenate([z, jax.random.normal(k_zc, (batch_size, noise_dim))])
            generated = generator.apply({'params': g_params}, z, jnp.concatenate([text[labels], t_h]))
        else:
            generated = generator.apply({'params': g_params}, z, text[labels])
        fake = generated[:batch_size]
        critic_all, logits_all = discriminator.apply({'params': d_params}, jnp.concatenate([generated, real]))
        critic_fake, logits_fake = critic_all[:batch_size], logits_all[:batch_size]
        logits_real = logits_all[-batch_size:]
        adversarial = -jnp.mean(critic_fake)
        cls = (losses.classification_loss(logits_real, labels) + losses.classification_loss(logits_fake, labels)) / 2
        pivot = losses.visual_pivot_loss(fake, labels, classes['centroid'])
        reg_w = losses.weight_l2(generator_kernels(g_params))
        reg_text = (losses.group_l21(g_params['text_reduction']['kernel']) if 'text_reduction' in g_params
                    else jnp.zeros(()))
        loss = (adversarial + cls + loss_cfg.centroid_weight * pivot + loss_cfg.weight_l2 * reg_w
                + loss_cfg.text_l21 * reg_text)
        metrics = {'g_adversarial': adversarial, 'g_cls': cls, 'visual_pivot': pivot, 'reg_l2': reg_w,
                   'reg_l21': reg_text,
                   'acc_real': jnp.mean(jnp.argmax(logits_real, -1) == labels),
                   'acc_fake': jnp.mean(jnp.argmax(logits_fake, -1) == labels)}
        if creative:
            critic_c, logits_c = critic_all[batch_size:2 * batch_size], logits_all[batch_size:2 * batch_size]
            realism = -jnp.mean(critic_c)
            creativity = creativity_loss(cizsl, logits_c, params.get('orders'))
            loss = loss + realism + creativity
            metrics.update(creative_realism=realism, creativity=creativity)
            n_orders = divergences.LEARNED_ORDERS[cizsl.divergence]
            for i, name in enumerate(('sm_alpha', 'sm_beta')[:n_orders]):
                metrics[name] = divergences.order_from_logit(params['orders'][i])
        metrics['loss'] = loss
        return loss, metrics

    def update(state: State, batch: dict, rng: jax.Array) -> tuple[State, dict]:
        features = batch['feature'].reshape(batch_size, draws, -1).swapaxes(0, 1)
        labels = batch['label'].reshape(batch_size, draws).swapaxes(0, 1)
        k_critic, k_gen = jax.random.split(rng)
        g_state, classes = state['generator'], state['classes']
        d_state, critic_metrics = jax.lax.scan(
            lambda d, xs: critic_step(g_state.params, classes['text'], d, xs), state['discriminator'],
            (features[:critic_steps], labels[:critic_steps], jax.random.split(k_critic, critic_steps)))
        trained = {'generator': g_state.params}
        if 'orders' in state:
            trained['orders'] = state['orders'].params
        creative_labels = labels[draws - 1]
        grads, metrics = jax.grad(generator_loss, has_aux=True)(
            trained, d_state.params, classes, features[critic_steps], labels[critic_steps], creative_labels, k_gen)
        new_state = {**state, 'discriminator': d_state, 'generator': g_state.apply_gradients(grads['generator'])}
        if 'orders' in state:
            new_state['orders'] = state['orders'].apply_gradients(grads['orders'])
        metrics.update({k: jnp.mean(v) for k, v in critic_metrics.items()})
        return new_state, metrics

    return update


def make_init_state(config: ml_collections.ConfigDict, problem: ZslProblem, generator: Generator,
                    discriminator: Discriminator) -> Callable[[jax.Array], State]:
    """init_state(rng) -> the players' TrainStates and the seen classes' text and pivots."""
    seen_text, centroids = problem.seen_text, problem.centroids()
    n_orders = divergences.LEARNED_ORDERS[config.cizsl.divergence] if config.model.variant == 'cizsl' else 0
    orders_optim = config.optim.copy_and_resolve_references()
    orders_optim.learning_rate, orders_optim.beta2 = config.cizsl.orders_lr, config.cizsl.orders_beta2

    def init_state(rng: jax.Array) -> State:
        k_g, k_d, k_o = jax.random.split(rng, 3)
        g_params = generator.init(k_g, jnp.zeros((1, config.model.noise_dim)), jnp.zeros((1, problem.text_dim)))
        d_params = discriminator.init(k_d, jnp.zeros((1, problem.feature_dim)))
        state = {'generator': TrainState.from_config(g_params['params'], config),
                 'discriminator': TrainState.from_config(d_params['params'], config),
                 'classes': {'text': jnp.asarray(seen_text), 'centroid': jnp.asarray(centroids)}}
        if n_orders:
            # torch.nn.Linear(1, n, bias=False) starts its weights uniform in [-1, 1].
            orders = jax.random.uniform(k_o, (n_orders,), minval=-1.0, maxval=1.0)
            state['orders'] = TrainState.create(orders, make_optimizer(orders_optim, config.training.num_steps),
                                                ema_rate=config.optim.ema_rate)
        return state

    return init_state
