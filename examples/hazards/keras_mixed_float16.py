"""MNIST with the Keras mixed_float16 policy: a compiled model and a custom training loop."""

import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

keras.mixed_precision.set_global_policy("mixed_float16")

(x_train, y_train), _ = keras.datasets.mnist.load_data()
x_train = x_train.reshape(-1, 784).astype("float32") / 255

model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        layers.Dense(1000, activation="relu"),
        layers.Dense(100, activation="relu"),  # AMP201
        layers.Dense(10, activation="softmax"),  # AMP101 AMP201
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=100, epochs=2)  # AMP202

# The same model again, trained by hand.
optimizer = keras.optimizers.Adam()
loss_fn = keras.losses.SparseCategoricalCrossentropy()
dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(128)
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)  # AMP301
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
