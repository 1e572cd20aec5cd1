"""
==========================================
A two-dimensional code: autoencoder vs PCA
==========================================

With ``n_components=2`` the code itself can be drawn. PCA's two components
are the two directions of largest variance; the autoencoder's two numbers are
whatever lets its decoder rebuild the digit best. Neither sees the labels;
coloring the test digits by their label shows how well each code separates
the ten classes, and two numbers make that concrete: the accuracy of a
nearest-neighbour classifier working in the 2-D code, and the
:func:`~sklearn.manifold.trustworthiness` of the embedding (how well it keeps
the nearest neighbours of the 64-pixel images).
"""

# %%
# Fit both on the training digits
# -------------------------------
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer
from skae.plotting import plot_latent

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

models = {
    "PCA": PCA(n_components=2, random_state=0),
    "Autoencoder": AutoencoderTransformer(n_components=2, random_state=0),
}
codes = {}
for name, model in models.items():
    Z_train = model.fit_transform(X_train)
    Z_test = model.transform(X_test)
    knn = KNeighborsClassifier(n_neighbors=5).fit(Z_train, y_train)
    codes[name] = Z_test
    print(
        f"{name:>11}: 5-NN accuracy in the code {knn.score(Z_test, y_test):.2f}, "
        f"trustworthiness {trustworthiness(X_test, Z_test, n_neighbors=5):.2f}, "
        f"reconstruction MSE "
        f"{((X_test - model.inverse_transform(Z_test)) ** 2).mean():.1f}"
    )

# %%
# The codes of the test digits
# ----------------------------
# In PCA's plane most classes overlap. The autoencoder's code spreads the
# classes into separate arms and clusters, although it was trained only to
# reconstruct pixels. The scale of its axes means nothing in itself: any
# invertible warp of the code could be undone by the decoder.
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, (name, Z_test) in zip(axes, codes.items(), strict=True):
    plot_latent(Z_test, y_test, ax=ax, title=name)
fig.tight_layout()
plt.show()
